/* Times calls of an exported tiny_grad (examples/export_cost.rs builds and runs it):
 * prints the fastest of RUNS runs of CALLS calls, in nanoseconds per call. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "tiny.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 5000000;
    int runs = argc > 2 ? atoi(argv[2]) : 9;
    double x[2] = {0.3, 0.7}, y, g[2], work[1];
    const double *volatile arg[1] = {x};
    double *res[2] = {&y, g};
    double best = 1e300;
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        for (long i = 0; i < calls; i++) tiny_grad((const double **)arg, res, work);
        double ns = (now() - t0) * 1e9 / calls;
        if (ns < best) best = ns;
    }
    printf("%.3f\n", best);
    return y == 12345.0; /* keeps the results live */
}
