//! Default inputs: a small seeded generator and the draw of every parameter from the
//! distribution its declaration names (`~ uniform(-1, 1)` by default).
//!
//! Each parameter's stream is seeded from the run's seed and the parameter's name, so adding a
//! parameter does not change the values the others get.

use crate::call::{try_zeros, AllocError};
use crate::ir::{DType, Func, Init, Param};

/// SplitMix64: tiny, fast, and good enough for test inputs (not for cryptography).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal, by Box-Muller.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // in (0, 1], so the log is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// An integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
}

fn name_hash(name: &str) -> u64 {
    // FNV-1a.
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Draws the default value of one parameter (row-major, `numel` elements).
pub fn draw(param: &Param, seed: u64) -> Vec<f64> {
    let mut out = vec![0.0; param.ty.numel()];
    fill(param, seed, &mut out);
    out
}

/// Writes the default value of one parameter into `out` (which holds `numel` zeros).
fn fill(param: &Param, seed: u64, out: &mut [f64]) {
    let mut rng = Rng::new(seed ^ name_hash(&param.name));
    if param.ty.dtype == DType::Bool {
        return out.fill_with(|| (rng.uniform() < 0.5) as u8 as f64);
    }
    match param.init.unwrap_or(Init::DEFAULT) {
        Init::Uniform(lo, hi) => out.fill_with(|| rng.range(lo, hi)),
        Init::Normal(mean, std) => out.fill_with(|| mean + std * rng.normal()),
        Init::Sign => out.fill_with(|| if rng.uniform() < 0.5 { -1.0 } else { 1.0 }),
        Init::OneHot => {
            let shape = param.ty.shape;
            let row = if shape.is_empty() {
                1
            } else {
                shape.get(shape.len() - 1)
            };
            for r in 0..out.len().checked_div(row).unwrap_or(0) {
                out[r * row + rng.below(row)] = 1.0;
            }
        }
    }
}

/// Default values of every parameter of `f`, in order.
pub fn defaults(f: &Func, seed: u64) -> Vec<Vec<f64>> {
    f.params.iter().map(|p| draw(p, seed)).collect()
}

/// Default values of every parameter of `f`, or an error naming the parameter whose buffer
/// could not be allocated.
pub fn try_defaults(f: &Func, seed: u64) -> Result<Vec<Vec<f64>>, AllocError> {
    f.params
        .iter()
        .map(|p| {
            let mut out = try_zeros(p.ty.numel(), || {
                format!("input '{}' ({}) of @{}", p.name, p.ty, f.name)
            })?;
            fill(p, seed, &mut out);
            Ok(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Role, Type};

    fn param(name: &str, shape: &[usize], init: Option<Init>) -> Param {
        Param {
            name: name.into(),
            ty: Type::f64(shape),
            role: Role::Data,
            init,
        }
    }

    #[test]
    fn draws_are_seeded_and_in_range() {
        let p = param("x", &[1000], Some(Init::Uniform(2.0, 3.0)));
        let a = draw(&p, 7);
        assert_eq!(a, draw(&p, 7));
        assert_ne!(a, draw(&p, 8));
        assert!(a.iter().all(|&x| (2.0..3.0).contains(&x)));
        let s = draw(&param("y", &[100], Some(Init::Sign)), 1);
        assert!(s.iter().all(|&x| x == 1.0 || x == -1.0));
        assert!(s.contains(&1.0) && s.contains(&-1.0));
        let h = draw(&param("t", &[5, 4], Some(Init::OneHot)), 1);
        for row in h.chunks(4) {
            assert_eq!(row.iter().sum::<f64>(), 1.0);
        }
        let n = draw(&param("z", &[20000], Some(Init::Normal(1.0, 2.0))), 3);
        let mean = n.iter().sum::<f64>() / n.len() as f64;
        assert!((mean - 1.0).abs() < 0.1, "mean {mean}");
    }
}
