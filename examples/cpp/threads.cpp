// threads.cpp: adjit's run-time C API from C++ threads.
//
// Loads an .ir file, builds its gradient, compiles it once, and calls the one compiled function
// from 4 std::threads, each with its own workspace (adjit_compiled is shared; a workspace is
// one thread's). Every call must give the same bits; the results are printed once, each double
// as the hex of its bits, so a test can compare them exactly. Exits nonzero on any error.
//
// Inputs: element j of input i is 0.1 * ((7 i + 3 j) % 11) - 0.5 (bool inputs: j % 2).
//
// Build (from the repository, after `cargo build --release`):
//   c++ -std=c++17 -pthread -I include examples/cpp/threads.cpp
//       -L target/release -ladjit -Wl,-rpath,$PWD/target/release -o threads
//   ./threads ir/models/rosenbrock.ir

#include "adjit.h"

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

// Owning handles: each object freed by its matching function.
struct FuncFree { void operator()(adjit_func *f) const { adjit_func_free(f); } };
struct CompiledFree { void operator()(adjit_compiled *c) const { adjit_compiled_free(c); } };
struct WorkspaceFree { void operator()(adjit_workspace *w) const { adjit_workspace_free(w); } };
using Func = std::unique_ptr<adjit_func, FuncFree>;
using Compiled = std::unique_ptr<adjit_compiled, CompiledFree>;
using Workspace = std::unique_ptr<adjit_workspace, WorkspaceFree>;

// A failed call of the API: its status name and message.
struct Error {
    std::string what;
};

// Throws the status and message of a failed call (and frees the message). `message` is taken
// by reference: it is read after the call in the first argument has written it.
void check(int status, char *&message, const char *what) {
    if (status == ADJIT_OK) return;
    std::string text = std::string(what) + ": " + adjit_status_name(status) + ": " +
                       (message ? message : "");
    adjit_string_free(message);
    throw Error{text};
}

using Buffers = std::vector<std::vector<double>>;

// Runs `calls` calls of `c` on `inputs` with a workspace of its own; every call must give the
// bits of the first, which it returns.
Buffers run(const adjit_compiled *c, const Buffers &inputs, int calls) {
    adjit_workspace *raw = nullptr;
    char *message = nullptr;
    check(adjit_workspace_new(c, &raw, &message), message, "adjit_workspace_new");
    Workspace ws(raw);
    std::vector<const double *> in;
    std::vector<size_t> in_len;
    for (const auto &x : inputs) {
        in.push_back(x.data());
        in_len.push_back(x.size());
    }
    Buffers first;
    for (int k = 0; k < calls; k++) {
        Buffers out(adjit_n_out(c));
        std::vector<double *> outp;
        std::vector<size_t> out_len;
        for (size_t j = 0; j < out.size(); j++) {
            out[j].assign(adjit_len_out(c, j), 0.0);
            outp.push_back(out[j].data());
            out_len.push_back(out[j].size());
        }
        check(adjit_call(c, ws.get(), in.data(), in_len.data(), in.size(), outp.data(),
                         out_len.data(), outp.size(), &message),
              message, "adjit_call");
        if (k == 0) {
            first = out;
        } else if (out != first) {  // exact comparison, NaN aside (none here)
            throw Error{"call " + std::to_string(k) + " differs from the first"};
        }
    }
    return first;
}

bool same_bits(const Buffers &a, const Buffers &b) {
    if (a.size() != b.size()) return false;
    for (size_t j = 0; j < a.size(); j++) {
        if (a[j].size() != b[j].size() ||
            std::memcmp(a[j].data(), b[j].data(), a[j].size() * sizeof(double)) != 0)
            return false;
    }
    return true;
}

int run_file(const char *path) {
    std::ifstream file(path);
    if (!file) throw Error{std::string("cannot read ") + path};
    std::stringstream text;
    text << file.rdbuf();

    adjit_func *raw = nullptr;
    char *message = nullptr;
    check(adjit_parse(text.str().c_str(), &raw, &message), message, path);
    Func f(raw);
    check(adjit_grad(f.get(), nullptr, 0, &raw, &message), message, "adjit_grad");
    Func grad(raw);
    adjit_compiled *compiled = nullptr;
    check(adjit_compile(grad.get(), &compiled, &message), message, "adjit_compile");
    Compiled c(compiled);

    Buffers inputs(adjit_n_in(c.get()));
    for (size_t i = 0; i < inputs.size(); i++) {
        inputs[i].resize(adjit_len_in(c.get(), i));
        for (size_t j = 0; j < inputs[i].size(); j++) {
            inputs[i][j] = adjit_dtype_in(c.get(), i) == ADJIT_BOOL
                               ? double(j % 2)
                               : 0.1 * double((7 * i + 3 * j) % 11) - 0.5;
        }
    }

    const int threads = 4, calls = 25;
    std::vector<Buffers> results(threads);
    std::vector<std::string> errors(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            try {
                results[t] = run(c.get(), inputs, calls);
            } catch (const Error &e) {
                errors[t] = e.what;
            }
        });
    }
    for (auto &th : pool) th.join();
    for (int t = 0; t < threads; t++) {
        if (!errors[t].empty()) throw Error{"thread " + std::to_string(t) + ": " + errors[t]};
        if (!same_bits(results[t], results[0]))
            throw Error{"thread " + std::to_string(t) + " differs from thread 0"};
    }

    std::printf("function %s: %zu inputs, %zu outputs\n", adjit_name(c.get()), inputs.size(),
                results[0].size());
    std::printf("threads %d x %d calls: identical\n", threads, calls);
    std::printf("value %.17g\n", results[0][0][0]);
    for (size_t j = 0; j < results[0].size(); j++) {
        std::printf("out %s", adjit_name_out(c.get(), j));
        for (double v : results[0][j]) {
            std::uint64_t bits;
            std::memcpy(&bits, &v, sizeof bits);
            std::printf(" %016" PRIx64, bits);
        }
        std::printf("\n");
    }
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FILE.ir\n", argv[0]);
        return 2;
    }
    try {
        return run_file(argv[1]);
    } catch (const Error &e) {
        std::fprintf(stderr, "error: %s\n", e.what.c_str());
        return 1;
    }
}
