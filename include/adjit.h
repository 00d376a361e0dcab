/*
 * adjit.h: the C API of adjit, a JIT-compiling automatic differentiator.
 *
 * Parse a function written as .ir text, differentiate it, compile it to native code, and call
 * it on your buffers, all at run time:
 *
 *     adjit_func *f, *g;  adjit_compiled *c;  adjit_workspace *ws;  char *err;
 *     adjit_parse(text, &f, &err);           // .ir text -> function (verified)
 *     adjit_grad(f, NULL, 0, &g, &err);      // -> (y, grad_x, ...)
 *     adjit_compile(g, &c, &err);            // -> native code
 *     adjit_workspace_new(c, &ws, &err);     // scratch memory, one per thread
 *     adjit_call(c, ws, in, in_len, n_in, out, out_len, n_out, &err);
 *     adjit_workspace_free(ws); adjit_compiled_free(c); adjit_func_free(g); adjit_func_free(f);
 *
 * Link with -ladjit (target/release/libadjit.so, or libadjit.a plus the system libraries that
 * `cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs` lists).
 *
 * Conventions, for every function below:
 *  - Status. Functions that can fail return an int: ADJIT_OK (0) or an adjit_status code.
 *    Nothing is printed and nothing aborts: a bug in adjit (a Rust panic) is caught and
 *    returned as ADJIT_ERR_INTERNAL. (Running out of memory outside a workspace, for example
 *    while compiling, aborts the process, as malloc failures do in most C libraries.)
 *  - Messages. The last argument `char **error` may be NULL. Otherwise it is set to NULL on
 *    entry and, on failure, to a message (UTF-8, NUL-terminated, with line:col for text
 *    errors) that the caller frees with adjit_string_free. Freeing it unconditionally is fine.
 *  - Results. `out` arguments must not be NULL; `*out` is set to NULL on entry and to a new
 *    object on success. The caller owns every object returned and frees it with the matching
 *    free function (adjit_func_free, adjit_compiled_free, adjit_workspace_free,
 *    adjit_string_free), each of which accepts NULL. Objects are independent: freeing a
 *    function does not free what was derived from it, and a workspace outlives nothing it
 *    needs (but can only be used with the compiled function it was made for).
 *  - Pointers. A NULL where an object, string or array is needed returns ADJIT_ERR_NULL. Other
 *    pointers must be valid (a freed or foreign object is undefined behavior, as in C).
 *  - Threads. adjit_func and adjit_compiled are immutable once made: any number of threads may
 *    use one at the same time (transform, compile, query, call). An adjit_workspace is
 *    mutable scratch memory: one thread at a time, so give each thread its own. Nothing takes
 *    a global lock; there is no global state to set up. Never free an object while another
 *    thread uses it.
 *  - Buffers. Values are row-major, contiguous arrays of doubles, one buffer per input and per
 *    output; a bool value travels as 0.0/1.0. Lengths count doubles and must be exact.
 *
 * Build: `cargo build --release` writes target/release/libadjit.so and libadjit.a.
 */
#ifndef ADJIT_H
#define ADJIT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: what every function that can fail returns. */
typedef enum adjit_status {
    ADJIT_OK = 0,
    ADJIT_ERR_NULL = 1,              /* a required pointer is NULL */
    ADJIT_ERR_ARGUMENT = 2,          /* an unknown mode, a string that is not UTF-8, a
                                        misaligned buffer */
    ADJIT_ERR_PARSE = 3,             /* the text is not a valid function (syntax, types or
                                        verification); the message starts with line:col */
    ADJIT_ERR_TRANSFORM = 4,         /* cannot differentiate as asked (no such input, not a
                                        scalar result for grad/hvp/hessian, too large, ...) */
    ADJIT_ERR_COMPILE = 5,           /* code generation failed (an unsupported CPU, ...) */
    ADJIT_ERR_COUNT = 6,             /* wrong number of input or output buffers */
    ADJIT_ERR_SHORT_BUFFER = 7,      /* a buffer length is below its value's element count */
    ADJIT_ERR_LONG_BUFFER = 8,       /* a buffer length is above its value's element count */
    ADJIT_ERR_OVERLAP = 9,           /* an output buffer overlaps an input or another output */
    ADJIT_ERR_FOREIGN_WORKSPACE = 10, /* the workspace was made for another adjit_compiled */
    ADJIT_ERR_OUT_OF_MEMORY = 11,    /* a workspace does not fit in memory; the message says
                                        how many bytes and for which value */
    ADJIT_ERR_INTERNAL = 12          /* a bug in adjit (a caught panic): please report it */
} adjit_status;

/* The name of a status code ("ADJIT_ERR_PARSE"), or "unknown status". A static string: do not
 * free it. Thread-safe. */
const char *adjit_status_name(int status);

/* Frees a string returned by this library (an error message, adjit_func_text). NULL is a
 * no-op. */
void adjit_string_free(char *s);

/* ------------------------------------------------------------------------------------------ */
/* Functions: parsed or derived IR, not yet compiled. */

/* A function (IR). Immutable; shareable between threads. */
typedef struct adjit_func adjit_func;

/* Parses .ir text (NUL-terminated UTF-8; its entry function, with the functions its scans
 * call) and verifies it. On a syntax, type or verification error: ADJIT_ERR_PARSE, with a
 * message that starts with "line:col: " and quotes the line. */
int adjit_parse(const char *text, adjit_func **out, char **error);

/* The function as .ir text, which adjit_parse reads back to the same function. Free *out with
 * adjit_string_free. */
int adjit_func_text(const adjit_func *f, char **out, char **error);

/* Frees a function. NULL is a no-op. */
void adjit_func_free(adjit_func *f);

/* Transforms. Each makes a new function from `f`, which is left as it was.
 *
 * `wrt` names the inputs to differentiate (`n_wrt` NUL-terminated names); NULL with n_wrt 0
 * differentiates every f64 input not marked `data` in the .ir text. An unknown name, a bool
 * input, or nothing to differentiate is ADJIT_ERR_TRANSFORM.
 *
 * Inputs and outputs of the result, in order (x ranges over the differentiated inputs, y
 * over the results of f; output names as adjit_name_out gives them; a result of f that the
 * .ir text does not name is "y", or "y0", "y1", ... if there are several):
 *   grad     f(inputs)              -> (y, grad_x...)            f must have one f64[] result
 *   vjp      f(inputs, ybar...)     -> (ys..., vjp_x...)         cotangents named <y>_bar
 *   jvp      f(inputs, t_x...)      -> (ys..., jvp_y...)         one tangent per result
 *   hvp      f(inputs, v_x...)      -> (y, grad_x..., hvp_x...)  one f64[] result
 *   hvp_only f(inputs, v_x...)      -> (hvp_x...)                one f64[] result
 *   jacobian f(inputs)              -> (ys..., jac_y_x...)       jac_y_x: f64[y.shape + x.shape],
 *                                                                y slowest, x fastest
 *   hessian  f(inputs)              -> (y, grad_x..., hess_a_b...) one f64[] result;
 *                                                                f64[a.shape + b.shape], b fastest
 */
int adjit_grad(const adjit_func *f, const char *const *wrt, size_t n_wrt, adjit_func **out,
               char **error);
int adjit_vjp(const adjit_func *f, const char *const *wrt, size_t n_wrt, adjit_func **out,
              char **error);
int adjit_jvp(const adjit_func *f, const char *const *wrt, size_t n_wrt, adjit_func **out,
              char **error);

/* Modes of adjit_hvp and adjit_hvp_only: forward over reverse (usually faster) or reverse over
 * reverse. Both give the same function signature and the same values up to rounding. Another
 * value is ADJIT_ERR_ARGUMENT. */
enum { ADJIT_HVP_FWDREV = 0, ADJIT_HVP_REVREV = 1 };
int adjit_hvp(const adjit_func *f, const char *const *wrt, size_t n_wrt, int mode,
              adjit_func **out, char **error);
/* The Hessian-vector product alone, (hvp_x...): adjit_hvp's function without the value, the
 * gradient and the work only they need, for loops that call it many times at one point. */
int adjit_hvp_only(const adjit_func *f, const char *const *wrt, size_t n_wrt, int mode,
                   adjit_func **out, char **error);

/* Modes of adjit_jacobian: whichever needs fewer directions (forward on ties), one forward
 * pass over the inputs, or one reverse pass over the results. Another value is
 * ADJIT_ERR_ARGUMENT. */
enum { ADJIT_JAC_AUTO = 0, ADJIT_JAC_FORWARD = 1, ADJIT_JAC_REVERSE = 2 };
int adjit_jacobian(const adjit_func *f, const char *const *wrt, size_t n_wrt, int mode,
                   adjit_func **out, char **error);
int adjit_hessian(const adjit_func *f, const char *const *wrt, size_t n_wrt, adjit_func **out,
                  char **error);

/* ------------------------------------------------------------------------------------------ */
/* Compiled code. */

/* Native code for one function, with its signature. Immutable; shareable between threads, and
 * callable from many threads at once, each with its own workspace. */
typedef struct adjit_compiled adjit_compiled;

/* Compiles a function to native code for this CPU. Compiled code computes the same bits as
 * adjit's interpreter. */
int adjit_compile(const adjit_func *f, adjit_compiled **out, char **error);

/* Frees compiled code (and its machine code). NULL is a no-op. Workspaces made for it stay
 * valid to free. */
void adjit_compiled_free(adjit_compiled *c);

/* Signature queries. They cannot fail: a NULL `c` or an index out of range gives the answer in
 * brackets. Strings and shapes are owned by `c` and live as long as it does. */
const char *adjit_name(const adjit_compiled *c);            /* function name, no '@' [NULL] */
size_t adjit_n_in(const adjit_compiled *c);                 /* number of inputs [0] */
size_t adjit_n_out(const adjit_compiled *c);                /* number of outputs [0] */
const char *adjit_name_in(const adjit_compiled *c, size_t i);  /* parameter name [NULL] */
const char *adjit_name_out(const adjit_compiled *c, size_t i); /* output name [NULL] */
int adjit_rank_in(const adjit_compiled *c, size_t i);       /* number of axes [-1] */
int adjit_rank_out(const adjit_compiled *c, size_t i);
/* rank sizes, outermost first; never NULL for a valid index, even for rank 0 [NULL] */
const size_t *adjit_shape_in(const adjit_compiled *c, size_t i);
const size_t *adjit_shape_out(const adjit_compiled *c, size_t i);
size_t adjit_len_in(const adjit_compiled *c, size_t i);     /* element count [0] */
size_t adjit_len_out(const adjit_compiled *c, size_t i);
enum { ADJIT_F64 = 0, ADJIT_BOOL = 1 };
int adjit_dtype_in(const adjit_compiled *c, size_t i);      /* ADJIT_F64 or ADJIT_BOOL [-1] */
int adjit_dtype_out(const adjit_compiled *c, size_t i);
size_t adjit_workspace_len(const adjit_compiled *c);        /* doubles in a workspace [0] */

/* ------------------------------------------------------------------------------------------ */
/* Workspaces and calls. */

/* Scratch memory for calls of one adjit_compiled, reused between calls. One thread at a time;
 * may move between threads. */
typedef struct adjit_workspace adjit_workspace;

/* A new workspace for `c`, its constants written in. Too large for memory:
 * ADJIT_ERR_OUT_OF_MEMORY. */
int adjit_workspace_new(const adjit_compiled *c, adjit_workspace **out, char **error);

/* Frees a workspace. NULL is a no-op. */
void adjit_workspace_free(adjit_workspace *ws);

/* Calls compiled code. `in[i]` points to `in_len[i]` doubles for input i (i < n_in); `out[j]`
 * to `out_len[j]` doubles for output j (j < n_out), which the call overwrites. Checked before
 * anything runs, in this order:
 *   c or ws NULL                                   ADJIT_ERR_NULL
 *   ws made for another adjit_compiled             ADJIT_ERR_FOREIGN_WORKSPACE
 *   n_in != adjit_n_in(c), n_out != adjit_n_out(c) ADJIT_ERR_COUNT
 *   an array NULL (allowed when its count is 0)    ADJIT_ERR_NULL
 *   a buffer NULL (even of 0 elements)             ADJIT_ERR_NULL
 *   a buffer not aligned for doubles               ADJIT_ERR_ARGUMENT
 *   a length below / above adjit_len_in/_out       ADJIT_ERR_SHORT_BUFFER / _LONG_BUFFER
 *   an output overlapping an input or an output    ADJIT_ERR_OVERLAP
 * Inputs may overlap each other. On failure no output is written. The buffers must really
 * hold the lengths given (that cannot be checked). A call allocates nothing and takes no lock
 * (unless it fails: the message is allocated); calls of one `c` on different workspaces may
 * run at the same time. */
int adjit_call(const adjit_compiled *c, adjit_workspace *ws, const double *const *in,
               const size_t *in_len, size_t n_in, double *const *out, const size_t *out_len,
               size_t n_out, char **error);

#ifdef __cplusplus
}
#endif

#endif /* ADJIT_H */
