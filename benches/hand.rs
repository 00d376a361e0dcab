//! Hand-written Rust value-and-gradient functions: the practical limit that adjit is measured
//! against (derived by hand, no AD). Shared by `benches/jit.rs` and `tests/hand_written.rs`,
//! which checks every one against adjit's gradients.
#![allow(dead_code)]

/// `sin(x0) exp(x1) + x0 x1` and its gradient.
pub fn tiny(x: &[f64], g: &mut [f64]) -> f64 {
    let (s, c) = x[0].sin_cos();
    let e = x[1].exp();
    g[0] = c * e + x[1];
    g[1] = s * e + x[0];
    s * e + x[0] * x[1]
}

/// Rosenbrock over `x.len()` variables and its gradient, in one pass.
pub fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
    let n = x.len();
    g.fill(0.0);
    let mut f = 0.0;
    for i in 0..n - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        f += 100.0 * a * a + b * b;
        g[i] += -400.0 * x[i] * a - 2.0 * b;
        g[i + 1] += 200.0 * a;
    }
    f
}

/// Logistic loss `mean(log(1 + exp(-y (X w)))) + 0.005 |w|^2` and its gradient, for `X` of
/// `y.len()` rows.
pub fn logistic(w: &[f64], xm: &[f64], y: &[f64], g: &mut [f64]) -> f64 {
    let (n, d) = (y.len(), w.len());
    let inv = 1.0 / n as f64;
    for (gj, wj) in g.iter_mut().zip(w) {
        *gj = 0.01 * wj;
    }
    let mut loss = 0.0;
    for s in 0..n {
        let row = &xm[s * d..(s + 1) * d];
        let m: f64 = row.iter().zip(w).map(|(a, b)| a * b).sum();
        let e = (-y[s] * m).exp();
        loss += (1.0 + e).ln();
        let c = -y[s] * e / (1.0 + e) * inv;
        for (gj, a) in g.iter_mut().zip(row) {
            *gj += c * a;
        }
    }
    loss * inv + 0.005 * w.iter().map(|v| v * v).sum::<f64>()
}

const N: usize = 20;
const STEPS: usize = 100;
const DT: f64 = 0.01;

/// The coupled pendulums: states after every step, kept for the backward pass.
pub struct Pendulum {
    states: Vec<[f64; 2 * N]>,
}

impl Default for Pendulum {
    fn default() -> Self {
        Pendulum {
            states: vec![[0.0; 2 * N]; STEPS + 1],
        }
    }
}

fn side(j: usize) -> (usize, usize) {
    (j.saturating_sub(1), (j + 1).min(N - 1))
}

/// `F(th, om) = (om, acc(th, om))`.
fn field(s: &[f64; 2 * N], p: (f64, f64, f64), out: &mut [f64; 2 * N]) {
    let (gl, c, k) = p;
    for j in 0..N {
        let (l, r) = side(j);
        out[j] = s[N + j];
        out[N + j] = -gl * s[j].sin() - c * s[N + j] + k * ((s[l] - s[j]) + (s[r] - s[j]));
    }
}

/// Adds the VJP of `F` at `z` for cotangent `u` into `zbar` and the parameter cotangents.
fn field_vjp(
    z: &[f64; 2 * N],
    p: (f64, f64, f64),
    u: &[f64; 2 * N],
    zbar: &mut [f64; 2 * N],
    pbar: &mut [f64; 3],
) {
    let (gl, c, k) = p;
    for j in 0..N {
        let (l, r) = side(j);
        let uo = u[N + j];
        zbar[j] += -gl * z[j].cos() * uo - 2.0 * k * uo;
        zbar[l] += k * uo;
        zbar[r] += k * uo;
        zbar[N + j] += u[j] - c * uo;
        pbar[0] -= z[j].sin() * uo;
        pbar[1] -= z[N + j] * uo;
        pbar[2] += ((z[l] - z[j]) + (z[r] - z[j])) * uo;
    }
}

fn axpy(s: &[f64; 2 * N], a: f64, k: &[f64; 2 * N]) -> [f64; 2 * N] {
    let mut z = *s;
    for (zi, ki) in z.iter_mut().zip(k) {
        *zi += a * ki;
    }
    z
}

/// The four RK4 stage points and slopes from state `s`.
fn stages(s: &[f64; 2 * N], p: (f64, f64, f64)) -> ([[f64; 2 * N]; 4], [[f64; 2 * N]; 4]) {
    let mut k = [[0.0; 2 * N]; 4];
    let mut z = [*s; 4];
    field(&z[0], p, &mut k[0]);
    z[1] = axpy(s, DT / 2.0, &k[0]);
    field(&z[1], p, &mut k[1]);
    z[2] = axpy(s, DT / 2.0, &k[1]);
    field(&z[2], p, &mut k[2]);
    z[3] = axpy(s, DT, &k[2]);
    field(&z[3], p, &mut k[3]);
    (z, k)
}

impl Pendulum {
    /// The loss and its gradient with respect to `z` (angles, velocities, g/L, c, k).
    pub fn value_and_grad(&mut self, z: &[f64], target: &[f64], g: &mut [f64]) -> f64 {
        let p = (z[2 * N], z[2 * N + 1], z[2 * N + 2]);
        self.states[0].copy_from_slice(&z[..2 * N]);
        for t in 0..STEPS {
            let s = self.states[t];
            let (_, k) = stages(&s, p);
            let mut next = s;
            for i in 0..2 * N {
                next[i] += DT / 6.0 * (k[0][i] + 2.0 * k[1][i] + 2.0 * k[2][i] + k[3][i]);
            }
            self.states[t + 1] = next;
        }
        let last = &self.states[STEPS];
        let mut sbar = [0.0; 2 * N];
        let mut loss = 0.0;
        for i in 0..2 * N {
            let d = last[i] - target[i];
            loss += d * d;
            sbar[i] = 2.0 * d;
        }
        let mut pbar = [0.0; 3];
        for t in (0..STEPS).rev() {
            let (z4, _) = stages(&self.states[t], p);
            let mut kbar = [[0.0; 2 * N]; 4];
            for i in 0..2 * N {
                kbar[0][i] = DT / 6.0 * sbar[i];
                kbar[1][i] = DT / 3.0 * sbar[i];
                kbar[2][i] = DT / 3.0 * sbar[i];
                kbar[3][i] = DT / 6.0 * sbar[i];
            }
            for (stage, back) in [(3, DT), (2, DT / 2.0), (1, DT / 2.0), (0, 0.0)] {
                let mut zbar = [0.0; 2 * N];
                field_vjp(&z4[stage], p, &kbar[stage], &mut zbar, &mut pbar);
                for i in 0..2 * N {
                    sbar[i] += zbar[i];
                    if stage > 0 {
                        kbar[stage - 1][i] += back * zbar[i];
                    }
                }
            }
        }
        g[..2 * N].copy_from_slice(&sbar);
        g[2 * N..].copy_from_slice(&pbar);
        loss
    }
}
