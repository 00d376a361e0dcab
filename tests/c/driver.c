/* Calls one exported function F (compile with -DF=name -include name.h) on inputs read from
 * stdin, one hex bit pattern per line in argument order, and prints its signature as the
 * queries report it, then every result element as a hex bit pattern. Used by tests/export.rs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define Q(suffix) CAT(F, suffix)

static double read_double(void) {
    unsigned long long bits;
    if (scanf("%llx", &bits) != 1) {
        fprintf(stderr, "driver: short input\n");
        exit(2);
    }
    double x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static void signature(const char *side, int n, const char *(*name)(int), int (*rank)(int),
                      const size_t *(*shape)(int), size_t (*numel)(int)) {
    for (int i = 0; i < n; i++) {
        printf("%s %s %d", side, name(i), rank(i));
        for (int k = 0; k < rank(i); k++) printf(" %zu", shape(i)[k]);
        printf(" : %zu\n", numel(i));
    }
    /* Out of range: NULL, -1, NULL, 0. */
    if (name(n) != NULL || rank(-1) != -1 || shape(n) != NULL || numel(n + 7) != 0) {
        printf("bad out-of-range query\n");
    }
}

int main(void) {
    int n_in = Q(_n_in)(), n_out = Q(_n_out)();
    signature("in", n_in, Q(_name_in), Q(_rank_in), Q(_shape_in), Q(_numel_in));
    signature("out", n_out, Q(_name_out), Q(_rank_out), Q(_shape_out), Q(_numel_out));
    const double **arg = calloc(n_in + 1, sizeof *arg);
    double **res = calloc(n_out + 1, sizeof *res);
    for (int i = 0; i < n_in; i++) {
        size_t n = Q(_numel_in)(i);
        double *x = malloc((n + 1) * sizeof *x);
        for (size_t k = 0; k < n; k++) x[k] = read_double();
        arg[i] = x;
    }
    for (int i = 0; i < n_out; i++) res[i] = malloc((Q(_numel_out)(i) + 1) * sizeof(double));
    double *work = malloc((Q(_work)() + 1) * sizeof *work);
    /* Garbage in the workspace must not matter: constants are copied in by every call. */
    memset(work, 0xA5, (Q(_work)() + 1) * sizeof *work);
    int status = F(arg, res, work);
    printf("status %d\n", status);
    /* A second call on the same workspace gives the same results (checked by the test). */
    status = F(arg, res, work);
    printf("status %d\n", status);
    printf("null %d\n", F(NULL, res, work) != 0 || n_in == 0);
    for (int i = 0; i < n_out; i++) {
        for (size_t k = 0; k < Q(_numel_out)(i); k++) {
            unsigned long long bits;
            memcpy(&bits, &res[i][k], sizeof bits);
            printf("%016llx\n", bits);
        }
    }
    return 0;
}
