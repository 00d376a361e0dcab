//! Products `A B` of a few rows whose B is stored along the contraction (`B = X^T`, X
//! row-major: `[w; v] X^T` in `logistic`'s jvp and hvp), computed from B where it lies. Two
//! columns of B are loaded two contraction steps at a time and transposed in registers, where
//! the tiles of `matmul` would first copy all of B into panels: for so few rows of A, the copy
//! costs as much as the product. Each result element is still the interpreter's `fma` chain
//! over ascending `p`, so the bits do not change.

use super::loops::Walker;
use super::matmul::Operand;
use super::Emitter;
use crate::ops::contract::MatmulDims;
use cranelift_codegen::ir::{types, InstBuilder, Value as CV};
use cranelift_frontend::Variable;

/// Most rows of A for which a product by a B stored along the contraction is computed in
/// place (`Emitter::matmul_across`); above, packing B once serves every row.
pub const MAX_ACROSS_ROWS: usize = 4;

/// Whether a product of these sizes, with B's element stride `along_p` along the contraction
/// and `along_j` along its columns, is computed in place by `matmul_across`, not packed.
pub fn computed_across(d: &MatmulDims, along_p: i64, along_j: i64) -> bool {
    along_p == 1 && along_j != 1 && (2..=MAX_ACROSS_ROWS).contains(&d.m) && d.k >= 2 && d.n >= 2
}

/// Rows of A per tile, and pairs of B's columns per tile: eight two-lane accumulators, enough
/// independent chains to cover the FMA's latency, with room for A's splats and B's pairs.
const TILE_ROWS: usize = 2;
const TILE_PAIRS: usize = 4;

/// One kind of tile: its first row and column, its height and its width in columns (even,
/// except for a last single column computed with scalars).
#[derive(Clone, Copy)]
struct Tile {
    row0: usize,
    col0: usize,
    height: usize,
    width: usize,
}

impl Emitter<'_, '_> {
    /// Product `C = A B` (`d`), C in memory at `pc` row-major, B in memory with `b.row == 1`:
    /// tiles of up to 2 rows by 8 columns, accumulators `[C(i, j), C(i, j + 1)]`. Each step reads
    /// `[B(p, j), B(p + 1, j)]` and the same of column `j + 1` and transposes them into
    /// `[B(p, j), B(p, j + 1)]` and `[B(p + 1, j), B(p + 1, j + 1)]`; an odd last `p` takes the
    /// high halves of the pairs at `p - 1`.
    pub(super) fn matmul_across(&mut self, d: &MatmulDims, a: &Operand, b: &Operand, pc: CV) {
        let pairs = d.n / 2;
        let mut col_kinds = Vec::new();
        for (first, count, size) in super::matmul::tile_kinds(pairs, TILE_PAIRS) {
            col_kinds.push((2 * first, count, 2 * size));
        }
        col_kinds.push((2 * pairs, 1, d.n % 2));
        for (row0, row_count, height) in super::matmul::tile_kinds(d.m, TILE_ROWS) {
            for &(col0, col_count, width) in &col_kinds {
                if row_count == 0 || col_count == 0 || height == 0 || width == 0 {
                    continue;
                }
                let tile = Tile {
                    row0,
                    col0,
                    height,
                    width,
                };
                self.across_tiles(d, tile, [d.batch, row_count, col_count], (a, b), pc);
            }
        }
    }

    /// Tiles of one kind, repeated over `counts` (batch, row tiles, column tiles).
    fn across_tiles(
        &mut self,
        d: &MatmulDims,
        t: Tile,
        counts: [usize; 3],
        (a, b): (&Operand, &Operand),
        pc: CV,
    ) {
        let (m, n) = (d.m as i64, d.n as i64);
        let (h, w) = (t.height as i64, t.width as i64);
        let bp = b.ptr.expect("B in memory");
        let mut walkers = vec![
            Walker {
                start: self.fb.ins().iadd_imm_s(bp, 8 * t.col0 as i64 * b.col),
                strides: vec![8 * b.batch, 0, 8 * w * b.col],
            },
            Walker {
                start: self
                    .fb
                    .ins()
                    .iadd_imm_s(pc, 8 * (t.row0 as i64 * n + t.col0 as i64)),
                strides: vec![8 * m * n, 8 * h * n, 8 * w],
            },
        ];
        if let Some(ap) = a.ptr {
            walkers.push(Walker {
                start: self.fb.ins().iadd_imm_s(ap, 8 * t.row0 as i64 * a.row),
                strides: vec![8 * a.batch, 8 * h * a.row, 0],
            });
        }
        self.nest(&counts, &walkers, &mut |e, p| {
            // A's walker, pushed last, exists only for an A in memory.
            let pa = p.get(2).copied();
            let accs = e.across_accumulators(t);
            let mut inner = vec![Walker {
                start: p[0],
                strides: vec![16],
            }];
            if let Some(pa) = pa {
                inner.push(Walker {
                    start: pa,
                    strides: vec![16 * a.col],
                });
            }
            e.nest(&[d.k / 2], &inner, &mut |e2, q| {
                e2.across_step(t, &accs, (a, q.get(1).copied()), (b, q[0]), false);
            });
            if d.k % 2 == 1 {
                // The last `p` alone: the pairs at `p - 1`, their high halves.
                let last = d.k as i64 - 2;
                let qb = e.fb.ins().iadd_imm_s(p[0], 8 * last);
                let qa = pa.map(|pa| e.fb.ins().iadd_imm_s(pa, 8 * last * a.col));
                e.across_step(t, &accs, (a, qa), (b, qb), true);
            }
            e.across_store(t, &accs, n, p[1]);
        });
    }

    /// One accumulator per row and column pair of the tile (one scalar per row for a single
    /// column), each `+0.0`.
    fn across_accumulators(&mut self, t: Tile) -> Vec<Variable> {
        let lanes = if t.width == 1 { 1 } else { 2 };
        let count = t.height * t.width.div_ceil(2);
        (0..count)
            .map(|_| {
                let zero = self.fb.ins().f64const(0.0);
                let (ty, zero) = if lanes == 2 {
                    (types::F64X2, self.fb.ins().splat(types::F64X2, zero))
                } else {
                    (types::F64, zero)
                };
                let acc = self.fb.declare_var(ty);
                self.fb.def_var(acc, zero);
                acc
            })
            .collect()
    }

    /// Steps `p` and `p + 1` of every chain of the tile (only `p + 1` if `last_only`), `pa` at
    /// `A(row0, p)` (`None` for a register A) and `pb` at `B(p, col0)`.
    fn across_step(
        &mut self,
        t: Tile,
        accs: &[Variable],
        (a, pa): (&Operand, Option<CV>),
        (b, pb): (&Operand, CV),
        last_only: bool,
    ) {
        let steps: &[i64] = if last_only { &[1] } else { &[0, 1] };
        let vector = t.width > 1;
        // A(row, p + s), splat over two lanes for the vector tiles.
        let mut factors = Vec::new();
        for row in 0..t.height as i64 {
            for &s in steps {
                factors.push(self.across_factor(a, pa, (row, s), vector));
            }
        }
        let groups = t.width.div_ceil(2);
        for g in 0..groups as i64 {
            // The terms of steps p and p + 1 for columns 2g and 2g + 1 (or column 0 alone).
            let terms: Vec<CV> = if vector {
                let u = self.load_at(types::F64X2, pb, 16 * g * b.col);
                let v = self.load_at(types::F64X2, pb, 8 * (2 * g + 1) * b.col);
                let (lo, hi) = self.transpose2(u, v);
                if last_only {
                    vec![hi]
                } else {
                    vec![lo, hi]
                }
            } else {
                steps
                    .iter()
                    .map(|&s| self.load_at(types::F64, pb, 8 * s))
                    .collect()
            };
            for row in 0..t.height {
                let acc = accs[row * groups + g as usize];
                let mut s = self.fb.use_var(acc);
                for (i, &term) in terms.iter().enumerate() {
                    let factor = factors[row * steps.len() + i];
                    // x86's FMA overwrites its first factor: the term in the last row, where
                    // it is read for the last time.
                    s = if row + 1 == t.height {
                        self.fb.ins().fma(term, factor, s)
                    } else {
                        self.fb.ins().fma(factor, term, s)
                    };
                }
                self.fb.def_var(acc, s);
            }
        }
    }

    /// `A(row0 + row, p + s)` (`pa` at `A(row0, p)`), splat over two lanes if `vector`.
    fn across_factor(
        &mut self,
        a: &Operand,
        pa: Option<CV>,
        (row, s): (i64, i64),
        vector: bool,
    ) -> CV {
        let x = match pa {
            Some(pa) => self.load_at(types::F64, pa, 8 * (row * a.row + s * a.col)),
            None => a.reg.expect("a register operand"),
        };
        if vector {
            self.fb.ins().splat(types::F64X2, x)
        } else {
            x
        }
    }

    /// Stores the tile's accumulators at `pc`, its first element of C (rows `n` apart).
    fn across_store(&mut self, t: Tile, accs: &[Variable], n: i64, pc: CV) {
        let groups = t.width.div_ceil(2);
        for row in 0..t.height {
            for g in 0..groups {
                let total = self.fb.use_var(accs[row * groups + g]);
                self.store_at(total, pc, 8 * (row as i64 * n + 2 * g as i64));
            }
        }
    }
}
