//! The shipped models: the benchmark functions of `ir/models/`, built with the Builder, and the
//! text of each file embedded in the binary (so `adjit bench` runs from any directory).
//!
//! Each builder is the single definition of its model's math; a test checks that every file in
//! `ir/models/` is exactly what its builder prints (`ADJIT_BLESS=1` rewrites the files).
//! Also here: the large Builder graphs of the compile-time benchmarks.

use crate::ir::{Builder, Checkpoint, Func, Init, Role, ScanOptions, Type, Var};

/// A shipped model: its name, the comment that opens its file, its builder and its file's text.
pub struct Model {
    pub name: &'static str,
    pub header: &'static str,
    pub build: fn() -> Func,
    pub text: &'static str,
}

macro_rules! model {
    ($name:literal, $build:ident, $header:expr) => {
        Model {
            name: $name,
            header: $header,
            build: $build,
            text: include_str!(concat!("../ir/models/", $name, ".ir")),
        }
    };
}

/// Every model of `ir/models/`, in the order `adjit bench` reports them.
pub const ALL: &[Model] = &[
    model!("tiny", tiny, "tiny: f(x) = sin(x0) * exp(x1) + x0 * x1"),
    model!(
        "neuron",
        neuron,
        "neuron (the seed's example): z = w x + b; y = sigmoid(z); L = (y - t)^2 / 2"
    ),
    model!(
        "rosenbrock",
        rosenbrock_100,
        "rosenbrock: f(x) = sum(100 (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2), n = 100"
    ),
    model!(
        "rosenbrock10k",
        rosenbrock_10000,
        "rosenbrock10k: the rosenbrock model over n = 10,000 variables,\n\
         f(x) = sum(100 (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)"
    ),
    model!(
        "logistic",
        logistic,
        "logistic regression: L(w) = mean(log(1 + exp(-y * (X w)))) + 0.5 * 0.01 * sum(w^2),\n\
         with X: 1000 samples of 100 features and labels y = +-1"
    ),
    model!(
        "mlp",
        mlp,
        "mlp: h1 = tanh(X W1 + b1); h2 = tanh(h1 W2 + b2); o = h2 W3 + b3;\n\
         L = sum((o - t)^2) / 32, for a batch of 32 inputs of 64 features"
    ),
    model!(
        "pendulum",
        pendulum,
        "pendulum: 20 pendulums coupled by springs, 100 RK4 steps of dt = 0.01, unrolled.\n\
         z = 20 angles th, 20 angular velocities om, then g/L, c, k;\n\
         acc = -(g/L) sin(th) - c om + k ((left - th) + (right - th)),\n\
         left = [th0, th0, ..., th18], right = [th1, ..., th19, th19];\n\
         L = sum((th - target[:20])^2) + sum((om - target[20:])^2) after the last step"
    ),
    model!(
        "pendulum_scan",
        pendulum_scan,
        "pendulum_scan: the pendulum model with its 100 RK4 steps as one scan (the same inputs\n\
         and the same function as the unrolled pendulum)"
    ),
    model!(
        "pendulum_long",
        pendulum_long,
        "pendulum_long: the pendulum system over 10,000 RK4 steps of dt = 0.001, as one scan"
    ),
    model!(
        "rnn",
        rnn,
        "rnn: an Elman network over 200 steps, hidden size 32, 8 inputs per step:\n\
         h_0 = 0, h_{t+1} = tanh(W h_t + U x_t + b), y_t = V . h_{t+1},\n\
         L = sum_t (y_t - target_t)^2 / 200"
    ),
    model!(
        "softmax",
        softmax,
        "softmax cross-entropy classifier: logits = X W + b (64 samples, 20 features, 10 classes);\n\
         L = mean(logsumexp(logits) - sum(Y * logits)) with one-hot labels Y,\n\
         logsumexp(l) = m + log(sum(exp(l - m))), m = max(l), per row"
    ),
    model!(
        "nbody",
        nbody,
        "gravitational N-body energy of 16 bodies (G = 1, softening eps = 0.1):\n\
         E = 1/2 sum_i m_i |v_i|^2 - 1/2 sum_{i != j} m_i m_j / sqrt(|p_i - p_j|^2 + eps^2)"
    ),
    model!(
        "bratu",
        bratu,
        "bratu: the discretized 1-D Bratu problem, a vector-valued model (its Jacobian is\n\
         tridiagonal): F_i = (u_{i-1} - 2 u_i + u_{i+1}) / h^2 + lam exp(u_i), i = 1..1000,\n\
         with u_0 = u_1001 = 0 and h = 1/1001"
    ),
];

impl Model {
    /// Whether the model has one scalar f64 result (so grad, hvp and `adjit bench` apply).
    pub fn scalar(&self) -> bool {
        let f = (self.build)();
        let r = f.result_types();
        r.len() == 1 && r[0] == Type::scalar()
    }
}

/// The model called `name`.
pub fn find(name: &str) -> Option<&'static Model> {
    ALL.iter().find(|m| m.name == name)
}

/// The text of a model's file: its header as comments, then the function.
pub fn file_text(m: &Model) -> String {
    let mut s = String::new();
    for line in m.header.lines() {
        s.push_str("; ");
        s.push_str(line.trim());
        s.push('\n');
    }
    s.push_str(&(m.build)().to_string());
    s
}

fn wrt<'b>(b: &'b Builder, name: &str, shape: &[usize], init: Init) -> Var<'b> {
    b.param_with(name, Type::f64(shape), Role::Wrt, Some(init))
}

fn data<'b>(b: &'b Builder, name: &str, shape: &[usize], init: Init) -> Var<'b> {
    b.param_with(name, Type::f64(shape), Role::Data, Some(init))
}

fn done(b: &Builder, y: Var<'_>) -> Func {
    b.finish(&[y]).expect("shipped models verify")
}

pub fn tiny() -> Func {
    let b = Builder::new("tiny");
    let x = b.param("x", &[2]);
    let (x0, x1) = (x.at(0), x.at(1));
    done(&b, x0.sin() * x1.exp() + x0 * x1)
}

pub fn neuron() -> Func {
    let b = Builder::new("neuron");
    let w = b.param("w", &[]);
    let x = b.data("x", &[]);
    let bias = b.param("b", &[]);
    let t = data(&b, "t", &[], Init::Uniform(0.0, 1.0));
    let z = w * x + bias;
    let y = z.sigmoid();
    let d = y - t;
    done(&b, d * d / 2.0)
}

/// Rosenbrock in tensor form over `n` variables.
pub fn rosenbrock(n: usize) -> Func {
    rosenbrock_named("rosenbrock", n)
}

/// Rosenbrock in tensor form over `n` variables, as the function `@name`.
pub fn rosenbrock_named(name: &str, n: usize) -> Func {
    let b = Builder::new(name);
    let x = b.param("x", &[n]);
    let head = x.slice(&[0], &[n - 1]);
    let tail = x.slice(&[1], &[n]);
    let a = tail - head * head;
    let c = 1.0 - head;
    done(&b, (100.0 * (a * a) + c * c).sum())
}

/// The Bratu residual over `n` unknowns: `F(u) = A u / h^2 + lam exp(u)`, `A` the second
/// difference with zero boundary values, `h = 1 / (n + 1)`.
pub fn bratu_n(n: usize) -> Func {
    let b = Builder::new("bratu");
    let u = b.param("u", &[n]);
    let lam = data(&b, "lam", &[], Init::Uniform(0.5, 1.5));
    let padded = u.pad(&[1], &[1]);
    let left = padded.slice(&[0], &[n]);
    let right = padded.slice(&[2], &[n + 2]);
    let h = 1.0 / (n as f64 + 1.0);
    let lap = (left - 2.0 * u + right) / (h * h);
    let f = lap + lam * u.exp();
    b.finish(&[f.named("F")]).expect("shipped models verify")
}

fn bratu() -> Func {
    bratu_n(1000)
}

fn rosenbrock_100() -> Func {
    rosenbrock(100)
}

fn rosenbrock_10000() -> Func {
    rosenbrock_named("rosenbrock10k", 10_000)
}

/// Rosenbrock over `n` variables written scalar by scalar: about `9 n` instructions of rank 0,
/// the straight-line code that stresses compile time.
pub fn rosenbrock_scalar(n: usize) -> Func {
    let b = Builder::new("rosenbrock_scalar");
    let x = b.param("x", &[n]);
    let xs: Vec<Var> = (0..n).map(|i| x.at(i)).collect();
    let mut total = b.scalar(0.0);
    for i in 0..n - 1 {
        let a = xs[i + 1] - xs[i] * xs[i];
        let c = 1.0 - xs[i];
        total = total + (100.0 * (a * a) + c * c);
    }
    done(&b, total)
}

pub fn logistic() -> Func {
    let b = Builder::new("logistic");
    let w = wrt(&b, "w", &[100], Init::Normal(0.0, 0.1));
    let xm = data(&b, "X", &[1000, 100], Init::Normal(0.0, 1.0));
    let y = data(&b, "y", &[1000], Init::Sign);
    let margin = -y * xm.matmul(w);
    let loss = (1.0 + margin.exp()).log().mean();
    done(&b, loss + 0.5 * 0.01 * (w * w).sum())
}

pub fn mlp() -> Func {
    let b = Builder::new("mlp");
    let w1 = wrt(&b, "W1", &[64, 128], Init::Normal(0.0, 0.125));
    let b1 = wrt(&b, "b1", &[128], Init::Normal(0.0, 0.1));
    let w2 = wrt(&b, "W2", &[128, 128], Init::Normal(0.0, 0.088));
    let b2 = wrt(&b, "b2", &[128], Init::Normal(0.0, 0.1));
    let w3 = wrt(&b, "W3", &[128], Init::Normal(0.0, 0.088));
    let b3 = wrt(&b, "b3", &[], Init::Normal(0.0, 0.1));
    let xm = data(&b, "X", &[32, 64], Init::Normal(0.0, 1.0));
    let t = data(&b, "t", &[32], Init::Normal(0.0, 1.0));
    let h1 = (xm.matmul(w1) + b1).tanh().named("h1");
    let h2 = (h1.matmul(w2) + b2).tanh().named("h2");
    let o = (h2.matmul(w3) + b3).named("o");
    let d = o - t;
    done(&b, (d * d).sum() / 32.0)
}

/// Number of pendulums and of RK4 steps in the `pendulum` model.
pub const PENDULUMS: usize = 20;
pub const PENDULUM_STEPS: usize = 100;
pub const PENDULUM_DT: f64 = 0.01;

pub fn pendulum() -> Func {
    pendulum_unrolled_of("pendulum", PENDULUM_STEPS, PENDULUM_DT)
}

/// The `pendulum` system with `steps` RK4 steps of `dt`, unrolled.
pub fn pendulum_unrolled_of(name: &str, steps: usize, dt: f64) -> Func {
    let n = PENDULUMS;
    let b = Builder::new(name);
    let z = wrt(&b, "z", &[2 * n + 3], Init::Uniform(0.1, 1.0));
    let target = data(&b, "target", &[2 * n], Init::Uniform(-1.0, 1.0));
    let mut th = z.slice(&[0], &[n]);
    let mut om = z.slice(&[n], &[2 * n]);
    let gl = z.at(2 * n).broadcast_to(&[n]);
    let c = z.at(2 * n + 1).broadcast_to(&[n]);
    let k = z.at(2 * n + 2).broadcast_to(&[n]);
    for _ in 0..steps {
        (th, om) = rk4(th, om, [gl, c, k], dt);
    }
    pendulum_loss(&b, th, om, target)
}

/// The pendulums' angular acceleration; `p` holds g/L, c and k, each broadcast to `th`'s shape.
fn pendulum_acc<'b>(th: Var<'b>, om: Var<'b>, p: [Var<'b>; 3]) -> Var<'b> {
    let (b, n) = (th.builder(), PENDULUMS);
    let [gl, c, k] = p;
    let left = b.concat(&[th.slice(&[0], &[1]), th.slice(&[0], &[n - 1])], 0);
    let right = b.concat(&[th.slice(&[1], &[n]), th.slice(&[n - 1], &[n])], 0);
    -gl * th.sin() - c * om + k * ((left - th) + (right - th))
}

/// One RK4 step of `dt` of the coupled pendulums.
fn rk4<'b>(th: Var<'b>, om: Var<'b>, p: [Var<'b>; 3], dt: f64) -> (Var<'b>, Var<'b>) {
    let acc = |th, om| pendulum_acc(th, om, p);
    let (k1t, k1o) = (om, acc(th, om));
    let (k2t, k2o) = (
        om + (dt / 2.0) * k1o,
        acc(th + (dt / 2.0) * k1t, om + (dt / 2.0) * k1o),
    );
    let (k3t, k3o) = (
        om + (dt / 2.0) * k2o,
        acc(th + (dt / 2.0) * k2t, om + (dt / 2.0) * k2o),
    );
    let (k4t, k4o) = (om + dt * k3o, acc(th + dt * k3t, om + dt * k3o));
    (
        th + (dt / 6.0) * (k1t + 2.0 * k2t + 2.0 * k3t + k4t),
        om + (dt / 6.0) * (k1o + 2.0 * k2o + 2.0 * k3o + k4o),
    )
}

fn pendulum_loss<'b>(b: &'b Builder, th: Var<'b>, om: Var<'b>, target: Var<'b>) -> Func {
    let n = PENDULUMS;
    let dth = th - target.slice(&[0], &[n]);
    let dom = om - target.slice(&[n], &[2 * n]);
    done(b, (dth * dth).sum() + (dom * dom).sum())
}

/// The `pendulum` system with its RK4 steps as one scan: consts g/L, c, k (scalars), carries
/// the angles and the angular velocities.
pub fn pendulum_scan_of(name: &str, steps: usize, dt: f64, checkpoint: Checkpoint) -> Func {
    let n = PENDULUMS;
    let b = Builder::new(name);
    let z = wrt(&b, "z", &[2 * n + 3], Init::Uniform(0.1, 1.0));
    let target = data(&b, "target", &[2 * n], Init::Uniform(-1.0, 1.0));
    let th = z.slice(&[0], &[n]);
    let om = z.slice(&[n], &[2 * n]);
    let p = [z.at(2 * n), z.at(2 * n + 1), z.at(2 * n + 2)];
    let opts = ScanOptions::new("rk4", steps).checkpoint(checkpoint);
    let out = b.scan(opts, &p, &[th, om], &[], |_, p, h, _| {
        let p = [0, 1, 2].map(|i| p[i].broadcast_to(&[PENDULUMS]));
        let (th, om) = rk4(h[0], h[1], p, dt);
        (vec![th, om], vec![])
    });
    pendulum_loss(&b, out.carries[0], out.carries[1], target)
}

/// Steps and step size of `pendulum_long`.
pub const PENDULUM_LONG_STEPS: usize = 10_000;
pub const PENDULUM_LONG_DT: f64 = 0.001;

pub fn pendulum_scan() -> Func {
    pendulum_scan_of(
        "pendulum_scan",
        PENDULUM_STEPS,
        PENDULUM_DT,
        Checkpoint::Auto,
    )
}

pub fn pendulum_long() -> Func {
    pendulum_scan_of(
        "pendulum_long",
        PENDULUM_LONG_STEPS,
        PENDULUM_LONG_DT,
        Checkpoint::Auto,
    )
}

/// Sequence length, hidden size and input size of the `rnn` model.
pub const RNN_STEPS: usize = 200;
pub const RNN_HIDDEN: usize = 32;
pub const RNN_INPUTS: usize = 8;

/// An Elman network: h_{t+1} = tanh(W h_t + U x_t + b), y_t = V . h_{t+1}, h_0 = 0,
/// L = sum_t (y_t - target_t)^2 / T.
pub fn rnn() -> Func {
    let (t, h, i) = (RNN_STEPS, RNN_HIDDEN, RNN_INPUTS);
    let b = Builder::new("rnn");
    let w = wrt(&b, "W", &[h, h], Init::Normal(0.0, 0.177));
    let u = wrt(&b, "U", &[h, i], Init::Normal(0.0, 0.35));
    let bias = wrt(&b, "b", &[h], Init::Normal(0.0, 0.1));
    let v = wrt(&b, "V", &[h], Init::Normal(0.0, 0.177));
    let x = data(&b, "x", &[t, i], Init::Normal(0.0, 1.0));
    let target = data(&b, "target", &[t], Init::Normal(0.0, 1.0));
    let h0 = b.splat(0.0, &[h]);
    let opts = ScanOptions::new("cell", t);
    let out = b.scan(opts, &[w, u, bias, v], &[h0], &[x], |_, c, s, x| {
        let (w, u, bias, v) = (c[0], c[1], c[2], c[3]);
        let next = (w.matmul(s[0]) + u.matmul(x[0]) + bias).tanh();
        (vec![next], vec![v.dot(next)])
    });
    let d = out.ys[0] - target;
    done(&b, (d * d).sum() / t as f64)
}

pub fn softmax() -> Func {
    let (samples, features, classes) = (64, 20, 10);
    let b = Builder::new("softmax");
    let w = wrt(&b, "W", &[features, classes], Init::Normal(0.0, 0.2));
    let bias = wrt(&b, "b", &[classes], Init::Normal(0.0, 0.1));
    let xm = data(&b, "X", &[samples, features], Init::Normal(0.0, 1.0));
    let y = data(&b, "Y", &[samples, classes], Init::OneHot);
    let logits = (xm.matmul(w) + bias).named("logits");
    let m = logits.max_axes(&[1]);
    let shifted = logits - m.expand(&[samples, classes], &[1]);
    let lse = m + shifted.exp().sum_axes(&[1]).log();
    let picked = (y * logits).sum_axes(&[1]);
    done(&b, (lse - picked).mean())
}

/// Bodies and softening of the `nbody` model.
pub const BODIES: usize = 16;
pub const SOFTENING: f64 = 0.1;

pub fn nbody() -> Func {
    let n = BODIES;
    let b = Builder::new("nbody");
    let p = wrt(&b, "p", &[n, 3], Init::Uniform(-1.0, 1.0));
    let v = wrt(&b, "v", &[n, 3], Init::Normal(0.0, 0.3));
    let m = data(&b, "m", &[n], Init::Uniform(0.5, 1.5));
    let kinetic = 0.5 * (m.expand(&[n, 3], &[1]) * v * v).sum();
    let diff = p.expand(&[n, n, 3], &[1]) - p.expand(&[n, n, 3], &[0]);
    let r = ((diff * diff).sum_axes(&[2]) + SOFTENING * SOFTENING).sqrt();
    let off_diagonal: Vec<f64> = (0..n * n)
        .map(|i| if i / n == i % n { 0.0 } else { 1.0 })
        .collect();
    let mask = b.tensor(&[n, n], &off_diagonal);
    let mm = m.expand(&[n, n], &[1]) * m.expand(&[n, n], &[0]);
    let potential = -0.5 * (mm * mask / r).sum();
    done(&b, kinetic + potential)
}
