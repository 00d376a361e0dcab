/* grad.c: f(x) = sum(x * x) and its gradient through adjit's run-time C API. */
#include <stdio.h>
#include "adjit.h"

int main(void) {
    const char *text = "func @f(x: f64[3]) -> (f64[]) {\n"
                       "    s: f64[3] = mul x, x\n"
                       "    y: f64[] = reduce_sum s [axes=[0]]\n"
                       "    return y\n"
                       "}\n";
    adjit_func *f = NULL, *g = NULL;
    adjit_compiled *c = NULL;
    adjit_workspace *ws = NULL;
    char *err = NULL;
    double x[3] = {1, 2, 3}, y, dx[3];
    const double *in[] = {x};
    double *out[] = {&y, dx};
    size_t in_len[] = {3}, out_len[] = {1, 3};
    int s = adjit_parse(text, &f, &err);
    if (!s) s = adjit_grad(f, NULL, 0, &g, &err); /* (y, grad_x) */
    if (!s) s = adjit_compile(g, &c, &err);
    if (!s) s = adjit_workspace_new(c, &ws, &err);
    if (!s) s = adjit_call(c, ws, in, in_len, 1, out, out_len, 2, &err);
    if (s) fprintf(stderr, "%s: %s\n", adjit_status_name(s), err);
    else printf("f = %g, grad = [%g, %g, %g]\n", y, dx[0], dx[1], dx[2]);
    adjit_string_free(err);
    adjit_workspace_free(ws);
    adjit_compiled_free(c);
    adjit_func_free(g);
    adjit_func_free(f);
    return s != ADJIT_OK;
}
