//! The shipped models: each file in `ir/models/` is exactly what its builder prints, and the
//! interpreter's value on the seeded default inputs equals a plain-Rust evaluation of the model's
//! math, written here independently of the IR, to 1e-12 relative.

mod common;

use adjit::inputs::defaults;
use adjit::interp::eval;
use adjit::models::{self, Model};
use common::{bless, canonical, diff, repo_path};

#[test]
fn every_file_is_what_its_builder_prints() {
    let mut failures = Vec::new();
    for m in models::ALL {
        let rel = format!("ir/models/{}.ir", m.name);
        let text = std::fs::read_to_string(repo_path(&rel)).expect("model file exists");
        let built = (m.build)().to_string();
        let header: String = m
            .header
            .lines()
            .map(|l| format!("; {}\n", l.trim()))
            .collect();
        if canonical(&text) == canonical(&built) && text.starts_with(&header) {
            continue;
        }
        if bless() {
            // Keep the file's `run` lines; rewrite the header and the function.
            let runs: String = text
                .lines()
                .filter(|l| l.starts_with("; run:"))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(repo_path(&rel), format!("{header}{runs}{built}")).expect("write model");
        } else {
            failures.push(format!(
                "{rel} (- file, + builder):\n{}",
                diff(&canonical(&text), &canonical(&built))
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nADJIT_BLESS=1 rewrites the files.",
        failures.join("\n")
    );
}

#[test]
fn embedded_texts_are_the_files() {
    for m in models::ALL {
        let on_disk =
            std::fs::read_to_string(repo_path(&format!("ir/models/{}.ir", m.name))).unwrap();
        assert_eq!(
            m.text, on_disk,
            "{}: rebuild to embed the current file",
            m.name
        );
    }
}

/// The model's value on its default inputs (seed 0), by the interpreter from its file.
fn interpreted(m: &Model) -> (f64, Vec<Vec<f64>>) {
    let f = adjit::ir::parse(m.text).expect("model parses");
    let inputs = defaults(&f, 0);
    let out = eval(&f, &inputs).expect("model runs");
    (out[0][0], inputs)
}

fn check(name: &str, reference: impl Fn(&[Vec<f64>]) -> f64) {
    let m = models::find(name).expect("model exists");
    let (got, inputs) = interpreted(m);
    let want = reference(&inputs);
    let rel = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
    assert!(
        rel <= 1e-12,
        "{name}: interpreter {got:e}, reference {want:e}, relative {rel:e}"
    );
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn tiny() {
    check("tiny", |i| {
        let x = &i[0];
        x[0].sin() * x[1].exp() + x[0] * x[1]
    });
}

#[test]
fn neuron() {
    check("neuron", |i| {
        let (w, x, b, t) = (i[0][0], i[1][0], i[2][0], i[3][0]);
        let y = sigmoid(w * x + b);
        (y - t).powi(2) / 2.0
    });
}

fn rosenbrock_sum(i: &[Vec<f64>]) -> f64 {
    let x = &i[0];
    (0..x.len() - 1)
        .map(|k| 100.0 * (x[k + 1] - x[k] * x[k]).powi(2) + (1.0 - x[k]).powi(2))
        .sum()
}

#[test]
fn rosenbrock() {
    check("rosenbrock", rosenbrock_sum);
}

#[test]
fn rosenbrock10k() {
    check("rosenbrock10k", |i| {
        assert_eq!(i[0].len(), 10_000);
        rosenbrock_sum(i)
    });
}

#[test]
fn logistic() {
    check("logistic", |i| {
        let (w, xm, y) = (&i[0], &i[1], &i[2]);
        let mut loss = 0.0;
        for s in 0..1000 {
            let dot: f64 = (0..100).map(|j| xm[s * 100 + j] * w[j]).sum();
            loss += (1.0 + (-y[s] * dot).exp()).ln();
        }
        loss / 1000.0 + 0.5 * 0.01 * w.iter().map(|v| v * v).sum::<f64>()
    });
}

/// `tanh(x W + b)` for a batch of rows.
fn dense_tanh(x: &[f64], rows: usize, inp: usize, w: &[f64], b: &[f64], out: usize) -> Vec<f64> {
    let mut h = vec![0.0; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let s: f64 = (0..inp).map(|k| x[r * inp + k] * w[k * out + o]).sum();
            h[r * out + o] = (s + b[o]).tanh();
        }
    }
    h
}

#[test]
fn mlp() {
    check("mlp", |i| {
        let (w1, b1, w2, b2, w3, b3, xm, t) =
            (&i[0], &i[1], &i[2], &i[3], &i[4], i[5][0], &i[6], &i[7]);
        let h1 = dense_tanh(xm, 32, 64, w1, b1, 128);
        let h2 = dense_tanh(&h1, 32, 128, w2, b2, 128);
        let mut loss = 0.0;
        for r in 0..32 {
            let o: f64 = (0..128).map(|k| h2[r * 128 + k] * w3[k]).sum::<f64>() + b3;
            loss += (o - t[r]).powi(2);
        }
        loss / 32.0
    });
}

/// The coupled pendulums after `steps` RK4 steps of `dt`, in plain Rust; the loss.
fn pendulum_reference(i: &[Vec<f64>], steps: usize, dt: f64) -> f64 {
    let (z, target) = (&i[0], &i[1]);
    let n = models::PENDULUMS;
    let (gl, c, k) = (z[2 * n], z[2 * n + 1], z[2 * n + 2]);
    let acc = |th: &[f64], om: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|j| {
                let left = th[j.saturating_sub(1)];
                let right = th[(j + 1).min(n - 1)];
                -gl * th[j].sin() - c * om[j] + k * ((left - th[j]) + (right - th[j]))
            })
            .collect()
    };
    let axpy = |x: &[f64], a: f64, y: &[f64]| -> Vec<f64> {
        x.iter().zip(y).map(|(x, y)| x + a * y).collect()
    };
    let mut th = z[..n].to_vec();
    let mut om = z[n..2 * n].to_vec();
    for _ in 0..steps {
        let (k1t, k1o) = (om.clone(), acc(&th, &om));
        let (k2t, k2o) = (
            axpy(&om, dt / 2.0, &k1o),
            acc(&axpy(&th, dt / 2.0, &k1t), &axpy(&om, dt / 2.0, &k1o)),
        );
        let (k3t, k3o) = (
            axpy(&om, dt / 2.0, &k2o),
            acc(&axpy(&th, dt / 2.0, &k2t), &axpy(&om, dt / 2.0, &k2o)),
        );
        let (k4t, k4o) = (
            axpy(&om, dt, &k3o),
            acc(&axpy(&th, dt, &k3t), &axpy(&om, dt, &k3o)),
        );
        for j in 0..n {
            th[j] += dt / 6.0 * (k1t[j] + 2.0 * k2t[j] + 2.0 * k3t[j] + k4t[j]);
            om[j] += dt / 6.0 * (k1o[j] + 2.0 * k2o[j] + 2.0 * k3o[j] + k4o[j]);
        }
    }
    (0..n).map(|j| (th[j] - target[j]).powi(2)).sum::<f64>()
        + (0..n).map(|j| (om[j] - target[n + j]).powi(2)).sum::<f64>()
}

#[test]
fn pendulum() {
    check("pendulum", |i| {
        pendulum_reference(i, models::PENDULUM_STEPS, models::PENDULUM_DT)
    });
}

#[test]
fn pendulum_scan() {
    check("pendulum_scan", |i| {
        pendulum_reference(i, models::PENDULUM_STEPS, models::PENDULUM_DT)
    });
}

#[test]
fn pendulum_long() {
    check("pendulum_long", |i| {
        pendulum_reference(i, models::PENDULUM_LONG_STEPS, models::PENDULUM_LONG_DT)
    });
}

#[test]
fn rnn() {
    check("rnn", |i| {
        let (w, u, b, v, x, target) = (&i[0], &i[1], &i[2], &i[3], &i[4], &i[5]);
        let (t, hn, xn) = (models::RNN_STEPS, models::RNN_HIDDEN, models::RNN_INPUTS);
        let mut h = vec![0.0; hn];
        let mut loss = 0.0;
        for s in 0..t {
            let next: Vec<f64> = (0..hn)
                .map(|r| {
                    let wh: f64 = (0..hn).map(|c| w[r * hn + c] * h[c]).sum();
                    let ux: f64 = (0..xn).map(|c| u[r * xn + c] * x[s * xn + c]).sum();
                    (wh + ux + b[r]).tanh()
                })
                .collect();
            h = next;
            let y: f64 = (0..hn).map(|r| v[r] * h[r]).sum();
            loss += (y - target[s]).powi(2);
        }
        loss / t as f64
    });
}

#[test]
fn softmax() {
    check("softmax", |i| {
        let (w, b, xm, y) = (&i[0], &i[1], &i[2], &i[3]);
        let (samples, features, classes) = (64, 20, 10);
        let mut loss = 0.0;
        for s in 0..samples {
            let logits: Vec<f64> = (0..classes)
                .map(|c| {
                    (0..features)
                        .map(|f| xm[s * features + f] * w[f * classes + c])
                        .sum::<f64>()
                        + b[c]
                })
                .collect();
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + logits.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
            let label = (0..classes)
                .find(|&c| y[s * classes + c] == 1.0)
                .expect("one-hot row");
            loss += lse - logits[label];
        }
        loss / samples as f64
    });
}

#[test]
fn nbody() {
    check("nbody", |i| {
        let (p, v, m) = (&i[0], &i[1], &i[2]);
        let n = models::BODIES;
        let eps2 = models::SOFTENING * models::SOFTENING;
        let kinetic: f64 = (0..n)
            .map(|a| 0.5 * m[a] * (0..3).map(|d| v[a * 3 + d].powi(2)).sum::<f64>())
            .sum();
        let mut potential = 0.0;
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    let d2: f64 = (0..3).map(|d| (p[a * 3 + d] - p[b * 3 + d]).powi(2)).sum();
                    potential -= 0.5 * m[a] * m[b] / (d2 + eps2).sqrt();
                }
            }
        }
        kinetic + potential
    });
}

/// Bratu: every element of the vector result, against plain Rust.
#[test]
fn bratu() {
    let m = models::find("bratu").expect("model exists");
    let f = adjit::ir::parse(m.text).expect("model parses");
    let inputs = defaults(&f, 0);
    let got = &eval(&f, &inputs).expect("model runs")[0];
    let (u, lam) = (&inputs[0], inputs[1][0]);
    let n = u.len();
    assert_eq!((n, got.len()), (1000, 1000));
    let h = 1.0 / 1001.0;
    let at = |i: isize| {
        if i < 0 || i >= n as isize {
            0.0
        } else {
            u[i as usize]
        }
    };
    for i in 0..n {
        let k = i as isize;
        let want = (at(k - 1) - 2.0 * u[i] + at(k + 1)) / (h * h) + lam * u[i].exp();
        let rel = (got[i] - want).abs() / want.abs().max(1.0);
        assert!(rel <= 1e-12, "F[{i}]: {} vs {want}", got[i]);
    }
    // A known point: u = 0 gives F = lam everywhere.
    let zero = vec![vec![0.0; n], vec![0.75]];
    let out = &eval(&f, &zero).expect("model runs")[0];
    assert!(out.iter().all(|&x| x == 0.75));
}

#[test]
fn every_model_has_a_value_test() {
    let tested = [
        "tiny",
        "neuron",
        "rosenbrock",
        "rosenbrock10k",
        "logistic",
        "mlp",
        "pendulum",
        "pendulum_scan",
        "pendulum_long",
        "rnn",
        "softmax",
        "nbody",
        "bratu",
    ];
    for m in models::ALL {
        assert!(
            tested.contains(&m.name),
            "model {} has no independent value test",
            m.name
        );
    }
}
