//! Matmuls as register-tiled loops that compute each element as the interpreter's `fma` chain,
//! or, for large enough products in the JIT on a CPU with AVX2 and FMA, a call of the Rust
//! kernel of `ops::gemm`, which computes the same chains with four-lane vectors.

use super::loops::Walker;
use super::{flags, vector_flags, Emitter};
use crate::ir::{DType, Inst, Value};
use crate::jit::plan::Kind;
use crate::jit::runtime::Callee;
use crate::ops::contract::MatmulDims;
use cranelift_codegen::ir::{
    types, ConstantData, Endianness, InstBuilder, MemFlagsData, Type, Value as CV,
};
use cranelift_frontend::Variable;

/// Products of at least this many multiply-adds call the AVX2 kernel where it is available;
/// below, the call and the kernel's setup cost more than its wider vectors save.
const GEMM_MIN_WORK: usize = 4096;

/// Fewest result rows for which the AVX2 kernel copies a B not contiguous along `j`: the copy
/// costs about one row's work. (`logistic`'s batched hvp, `[2,100] x X^T` with X 1000x100,
/// took twice as long through the kernel's copy as through the tiles.)
const GEMM_MIN_PACKED_ROWS: usize = 16;

/// A matmul operand: in memory (start pointer and element strides along the rows and columns
/// of the matrix as the product uses it, and between batch entries) or a register.
#[derive(Clone)]
pub(super) struct Operand {
    pub(super) ptr: Option<CV>,
    pub(super) reg: Option<CV>,
    pub(super) row: i64,
    pub(super) col: i64,
    pub(super) batch: i64,
}

impl Operand {
    /// A packed B (see `Emitter::pack`) as the tiles `width` columns wide read it.
    fn panels(&self, width: usize) -> Operand {
        Operand {
            row: width as i64,
            ..self.clone()
        }
    }

    /// An operand with the same value everywhere, in a register.
    fn register(reg: CV) -> Operand {
        Operand {
            ptr: None,
            reg: Some(reg),
            row: 0,
            col: 0,
            batch: 0,
        }
    }
}

/// The column groups of a tile `width` columns wide: (offset, lanes), two-lane vectors first if
/// `vectors`.
fn column_groups(width: usize, vectors: bool) -> Vec<(usize, usize)> {
    let mut g = Vec::new();
    let mut c = 0;
    while vectors && c + 2 <= width {
        g.push((c, 2));
        c += 2;
    }
    while c < width {
        g.push((c, 1));
        c += 1;
    }
    g
}

/// One kind of tile of a matmul's result: where the first one starts, its size, its column
/// groups (offset, lanes), the product's sizes, and where B's part for the first tile starts
/// and how far apart those of the next tiles along `j` are (in elements).
struct Tile {
    row0: usize,
    col0: usize,
    height: usize,
    width: usize,
    groups: Vec<(usize, usize)>,
    k: usize,
    m: usize,
    n: usize,
    b_start: i64,
    b_step: i64,
}

/// The kinds of tiles along one axis of `len` elements cut into tiles of `size`: (first
/// index, count, size) of the whole tiles, then of the remainder.
pub(super) fn tile_kinds(len: usize, size: usize) -> [(usize, usize, usize); 2] {
    [(0, len / size, size), (len / size * size, 1, len % size)]
}

/// Whether tiles of two-lane vectors compute a product `n` columns wide with this B: B
/// contiguous along `j` (or packed so), or a register.
fn vectorizes(b: &Operand, n: usize, packed: bool) -> bool {
    n >= 2 && (packed || b.ptr.is_none() || b.col == 1)
}

/// The operands and sizes `(m, n)` of the product as the tiles compute it: as given, or as its
/// transpose `C^T = B^T A^T` (the same memory, for a single row or column) where that
/// vectorizes a matrix-vector product with A contiguous along `i`, or puts a single row that
/// does not vectorize into 7-row scalar tiles.
fn orient(
    a: Operand,
    b: Operand,
    (m, n): (usize, usize),
    packed: bool,
) -> (Operand, Operand, usize, usize) {
    let column = n == 1 && m > 1 && a.ptr.is_some() && a.row == 1;
    let row = m == 1 && n > 1 && !vectorizes(&b, n, packed);
    if !(column || row) {
        return (a, b, m, n);
    }
    let flip = |x: Operand| Operand {
        row: x.col,
        col: x.row,
        ..x
    };
    (flip(b), flip(a), n, m)
}

impl Emitter<'_, '_> {
    /// A matmul, as loops that compute every result element as the interpreter does: the chain
    /// `acc = fma(A(i,p), B(p,j), acc)` for `p` ascending from `+0.0`, so results are
    /// bit-identical to it. The result is computed in tiles whose accumulators stay in registers
    /// across the `p` loop: 2 rows by 8 columns (eight two-lane vectors) when B is contiguous
    /// along `j` (or a register), else 7 rows by 1 column of scalars. Seven or eight independent
    /// chains keep both FMA units busy through the FMA's latency (4 cycles on the machine
    /// measured). A 2x8 tile needs 15 of the 16 vector registers (accumulators, B's vectors,
    /// A's splats, one copy of a factor the FMA overwrites); 3x6 needs all 16, which was as fast
    /// alone but had an accumulator spilled to the stack inside larger functions (`mlp`'s
    /// gradient took 443 us instead of 298), and 8x1 spills. A B in memory that is not
    /// contiguous along `j` (`tb`: B read across its rows) is first packed into the workspace
    /// range the planner reserved (`plan.packs`), so it gets the vector tiles too, except with
    /// 2 to 4 rows, where it is read in place (`across.rs`); a single row or column of the
    /// result is a single column of scalar tiles (`orient`).
    pub(super) fn matmul(&mut self, v: Value, inst: &Inst, ta: bool, tb: bool) {
        let f = self.f;
        let (a, b) = (inst.args[0], inst.args[1]);
        let (at, bt) = (f.value_type(a), f.value_type(b));
        let d = crate::ops::contract::matmul_dims(at, bt, ta, tb);
        let r = at.rank();
        // A(i, p) and B(p, j) as (row, col) strides.
        let opa = self.matmul_operand(a, ta, r);
        let opb = self.matmul_operand(b, tb, r);
        let packed = self.plan.packs[v];
        if self.calls_gemm(v, &d, &opa, &opb) {
            self.gemm(v, &d, &opa, &opb);
            return;
        }
        if opb.ptr.is_some() && super::across::computed_across(&d, opb.row, opb.col) {
            let pc = self.base(v);
            self.matmul_across(&d, &opa, &opb, pc);
            return;
        }
        let (opa, opb, m, n) = orient(opa, opb, (d.m, d.n), packed.is_some());
        let scalar_out = self.plan.kinds[v] == Kind::Scalar;
        let pc = if scalar_out { None } else { Some(self.base(v)) };
        let vectors = vectorizes(&opb, n, packed.is_some());
        // Without vectors, `orient` has made the result a single column.
        let (rows, cols) = if vectors { (2, 8) } else { (7, 1) };
        let packed = packed.map(|off| self.pack(&opb, &d, cols, off));
        let mut result = None;
        for (row0, row_tiles, height) in tile_kinds(m, rows) {
            for (col0, col_tiles, width) in tile_kinds(n, cols) {
                if row_tiles == 0 || col_tiles == 0 || height == 0 || width == 0 {
                    continue;
                }
                // A packed B: panels of `cols` columns, `k` rows of `width` each.
                let (b_start, b_step) = match packed {
                    Some(_) => ((col0 * d.k) as i64, (cols * d.k) as i64),
                    None => (col0 as i64 * opb.col, opb.col * width as i64),
                };
                let tile = Tile {
                    row0,
                    col0,
                    height,
                    width,
                    groups: column_groups(width, vectors),
                    k: d.k,
                    m,
                    n,
                    b_start,
                    b_step,
                };
                let ob = packed
                    .as_ref()
                    .map_or_else(|| opb.clone(), |p| p.panels(width));
                let out = self.matmul_tiles(&tile, [d.batch, row_tiles, col_tiles], &opa, &ob, pc);
                result = result.or(out);
            }
        }
        if let Some(r) = result {
            self.computed(v, r);
        }
    }

    /// Whether product `v` calls the AVX2 kernel (`ops::gemm`): the module imports it (the JIT
    /// on a CPU with AVX2 and FMA, not an object file), both operands and the result are in
    /// memory, B is contiguous along `j` or has a packing range to be copied into, and the
    /// product is large enough to repay the call (and, if B must be copied first, has rows
    /// enough to repay the copy).
    fn calls_gemm(&self, v: Value, d: &MatmulDims, a: &Operand, b: &Operand) -> bool {
        self.imports.contains_key(&Callee::Gemm)
            && a.ptr.is_some()
            && b.ptr.is_some()
            && self.plan.kinds[v] != Kind::Scalar
            && d.m >= 4
            && d.n >= 4
            && d.k >= 8
            && d.m * d.n * d.k >= GEMM_MIN_WORK
            && (b.col == 1 || (self.plan.packs[v].is_some() && d.m >= GEMM_MIN_PACKED_ROWS))
    }

    /// Product `v` by a call of the AVX2 kernel, its arguments in a stack slot
    /// (`ops::gemm::GemmArgs`).
    fn gemm(&mut self, v: Value, d: &MatmulDims, a: &Operand, b: &Operand) {
        let c = self.base(v);
        let scratch = match self.plan.packs[v] {
            Some(off) => self.work(off),
            None => self.fb.ins().iconst(types::I64, 0),
        };
        let sizes = [d.batch, d.m, d.k, d.n].map(|x| x as i64);
        let strides = [a.row, a.col, a.batch, b.row, b.col, b.batch];
        let mut fields = vec![
            a.ptr.expect("in memory"),
            b.ptr.expect("in memory"),
            c,
            scratch,
        ];
        for x in sizes.into_iter().chain(strides) {
            fields.push(self.fb.ins().iconst(types::I64, x));
        }
        let at = self.words(&fields);
        let kernel = self.host(Callee::Gemm);
        self.fb.ins().call(kernel, &[at]);
    }

    /// How the product reads operand `x` of rank `rank` (transposed or not).
    fn matmul_operand(&mut self, x: Value, transposed: bool, rank: usize) -> Operand {
        match self.plan.kinds[x] {
            Kind::Mem(m) => {
                let base = self.base(m.storage);
                let ptr = self.fb.ins().iadd_imm_s(base, 8 * m.offset);
                let (rows, cols) = (m.strides[rank - 2], m.strides[rank - 1]);
                let (row, col) = if transposed {
                    (cols, rows)
                } else {
                    (rows, cols)
                };
                Operand {
                    ptr: Some(ptr),
                    reg: None,
                    row,
                    col,
                    batch: if rank == 3 { m.strides[0] } else { 0 },
                }
            }
            Kind::Splat(c) => Operand::register(self.immediate(c, DType::F64)),
            Kind::Bcast(s) => Operand::register(self.reg(s)),
            Kind::Scalar | Kind::Fused => Operand::register(self.reg(x)),
            Kind::Pieces => panic!("internal: matmul of piecewise concat {x}"),
        }
    }

    /// Copies B (in memory, not contiguous along `j`) into the workspace at `off` as the
    /// panels the tiles read: per batch entry, the columns in groups of `cols` (the last one
    /// narrower), each group `k` rows of its columns, row-major, so that a tile reads its B
    /// front to back. Returns the copy as an operand (its row stride is set per tile width).
    fn pack(&mut self, b: &Operand, d: &MatmulDims, cols: usize, off: usize) -> Operand {
        let dst = self.work(off);
        let src = b.ptr.expect("packing a B in memory");
        let (k, n) = (d.k as i64, d.n as i64);
        for (col0, count, width) in tile_kinds(d.n, cols) {
            if count == 0 || width == 0 {
                continue;
            }
            let walkers = [
                Walker {
                    start: self.fb.ins().iadd_imm_s(src, 8 * col0 as i64 * b.col),
                    strides: vec![8 * b.batch, 8 * b.col * cols as i64],
                },
                Walker {
                    start: self.fb.ins().iadd_imm_s(dst, 8 * col0 as i64 * k),
                    strides: vec![8 * k * n, 8 * k * cols as i64],
                },
            ];
            self.nest(&[d.batch, count], &walkers, &mut |e, p| {
                e.pack_panel(b, (p[0], p[1]), width, d.k);
            });
        }
        Operand {
            ptr: Some(dst),
            reg: None,
            row: cols as i64,
            col: 1,
            batch: k * n,
        }
    }

    /// One panel of `pack`: `width` columns of B from `src` (at `B(0, j0)`) to `k` rows of
    /// `width` at `dst`. Where B is contiguous along `p` (a transposed B), two rows of two
    /// columns at a time: a vector load along `p` from each column, transposed in registers.
    fn pack_panel(&mut self, b: &Operand, (src, dst): (CV, CV), width: usize, k: usize) {
        let pairs = if b.row == 1 { k / 2 } else { 0 };
        let w = width as i64;
        let walkers = [
            Walker {
                start: src,
                strides: vec![16],
            },
            Walker {
                start: dst,
                strides: vec![16 * w],
            },
        ];
        self.nest(&[pairs], &walkers, &mut |e, p| {
            for c in (0..w).step_by(2) {
                // [B(p, c), B(p + 1, c)] and the same of column c + 1.
                let u = e.load_at(types::F64X2, p[0], 8 * c * b.col);
                let (lo, hi) = if c + 1 < w {
                    let v = e.load_at(types::F64X2, p[0], 8 * (c + 1) * b.col);
                    e.transpose2(u, v)
                } else {
                    let lo = e.fb.ins().extractlane(u, 0);
                    (lo, e.fb.ins().extractlane(u, 1))
                };
                e.store_at(lo, p[1], 8 * c);
                e.store_at(hi, p[1], 8 * (w + c));
            }
        });
        // The rows left (all of them where B is not contiguous along `p`), element by element.
        let done = 2 * pairs as i64;
        let walkers = [
            Walker {
                start: self.fb.ins().iadd_imm_s(src, 8 * done * b.row),
                strides: vec![8 * b.row, 8 * b.col],
            },
            Walker {
                start: self.fb.ins().iadd_imm_s(dst, 8 * done * w),
                strides: vec![8 * w, 8],
            },
        ];
        self.nest(&[k - 2 * pairs, width], &walkers, &mut |e, p| {
            let x = e.fb.ins().load(types::F64, flags(), p[0], 0);
            e.fb.ins().store(flags(), x, p[1], 0);
        });
    }

    /// The 2x2 transpose of the rows `u` and `v`: `([u0, v0], [u1, v1])`.
    pub(super) fn transpose2(&mut self, u: CV, v: CV) -> (CV, CV) {
        let lanes = MemFlagsData::new().with_endianness(Endianness::Little);
        let (bu, bv) = (
            self.fb.ins().bitcast(types::I8X16, lanes, u),
            self.fb.ins().bitcast(types::I8X16, lanes, v),
        );
        // Bytes 0-15 are u's, 16-31 v's: the low halves of both, then the high halves.
        let halves =
            |first: u8| -> Vec<u8> { (first..first + 8).chain(first + 16..first + 24).collect() };
        let [lo, hi] = [halves(0), halves(8)].map(|mask| {
            let mask = self.fb.func.dfg.immediates.push(ConstantData::from(mask));
            let x = self.fb.ins().shuffle(bu, bv, mask);
            self.fb.ins().bitcast(types::F64X2, lanes, x)
        });
        (lo, hi)
    }

    /// A load of `ty` at `ptr + offset` bytes (unaligned for vectors).
    pub(super) fn load_at(&mut self, ty: Type, ptr: CV, offset: i64) -> CV {
        let fl = if ty.is_vector() {
            vector_flags()
        } else {
            flags()
        };
        let (ptr, offset) = self.address(ptr, offset);
        self.fb.ins().load(ty, fl, ptr, offset)
    }

    /// Stores `x` at `ptr + offset` bytes (unaligned for vectors).
    pub(super) fn store_at(&mut self, x: CV, ptr: CV, offset: i64) {
        let vector = self.fb.func.dfg.value_type(x).is_vector();
        let fl = if vector { vector_flags() } else { flags() };
        let (ptr, offset) = self.address(ptr, offset);
        self.fb.ins().store(fl, x, ptr, offset);
    }

    /// `ptr + offset` as a base and an immediate offset that fits the instruction.
    fn address(&mut self, ptr: CV, offset: i64) -> (CV, i32) {
        match i32::try_from(offset) {
            Ok(o) => (ptr, o),
            Err(_) => (self.fb.ins().iadd_imm_s(ptr, offset), 0),
        }
    }

    /// One kind of tile of a matmul, repeated over `counts` (batch, row tiles, column tiles).
    /// Returns the single result for a one-element matmul without memory for `C`.
    fn matmul_tiles(
        &mut self,
        t: &Tile,
        counts: [usize; 3],
        a: &Operand,
        b: &Operand,
        pc: Option<CV>,
    ) -> Option<CV> {
        let (m, n) = (t.m as i64, t.n as i64);
        let (h, w) = (t.height as i64, t.width as i64);
        let mut walkers = Vec::new();
        let mut add = |e: &mut Self, ptr: Option<CV>, offset: i64, strides: [i64; 3]| {
            ptr.map(|p| {
                let start = e.fb.ins().iadd_imm_s(p, 8 * offset);
                walkers.push(Walker {
                    start,
                    strides: strides.iter().map(|s| 8 * s).collect(),
                });
                walkers.len() - 1
            })
        };
        let wa = add(self, a.ptr, t.row0 as i64 * a.row, [a.batch, a.row * h, 0]);
        let wb = add(self, b.ptr, t.b_start, [b.batch, 0, t.b_step]);
        let wc = add(
            self,
            pc,
            t.row0 as i64 * n + t.col0 as i64,
            [m * n, n * h, w],
        );
        let mut result = None;
        self.nest(&counts, &walkers, &mut |e, p| {
            let accs = e.tile_accumulators(t);
            // The contraction walks A along its columns and B along its rows.
            let mut inner = Vec::new();
            let ia = wa.map(|w| {
                inner.push(Walker {
                    start: p[w],
                    strides: vec![8 * a.col],
                });
                inner.len() - 1
            });
            let ib = wb.map(|w| {
                inner.push(Walker {
                    start: p[w],
                    strides: vec![8 * b.row],
                });
                inner.len() - 1
            });
            e.nest(&[t.k], &inner, &mut |e2, q| {
                let (pa, pb) = (ia.map(|i| q[i]), ib.map(|i| q[i]));
                e2.tile_step(t, &accs, (a, pa), (b, pb));
            });
            if let Some(total) = e.tile_store(t, &accs, wc.map(|w| p[w])) {
                result = Some(total);
            }
        });
        result
    }

    /// One accumulator per row and column group of a tile, each `+0.0`.
    fn tile_accumulators(&mut self, t: &Tile) -> Vec<Variable> {
        let mut accs = Vec::new();
        for _ in 0..t.height {
            for &(_, lanes) in &t.groups {
                let ty = if lanes == 2 { types::F64X2 } else { types::F64 };
                let acc = self.fb.declare_var(ty);
                let zero = self.fb.ins().f64const(0.0);
                let zero = if lanes == 2 {
                    self.fb.ins().splat(types::F64X2, zero)
                } else {
                    zero
                };
                self.fb.def_var(acc, zero);
                accs.push(acc);
            }
        }
        accs
    }

    /// One step `p` of the contraction: every accumulator of the tile becomes
    /// `fma(A(i, p), B(p, j), acc)`, one rounding (an instruction where the CPU has FMA, else
    /// Cranelift calls C's `fma`, which rounds the same).
    /// `pa` and `pb` point at `A(row0, p)` and `B(p, col0)` (`None` for register operands).
    fn tile_step(
        &mut self,
        t: &Tile,
        accs: &[Variable],
        (a, pa): (&Operand, Option<CV>),
        (b, pb): (&Operand, Option<CV>),
    ) {
        let bs: Vec<CV> = t
            .groups
            .iter()
            .map(|&(col, lanes)| {
                let offset = 8 * col as i64 * b.col;
                match pb {
                    Some(pb) if lanes == 2 => self.load_at(types::F64X2, pb, offset),
                    Some(pb) => self.load_at(types::F64, pb, offset),
                    None if lanes == 2 => {
                        let x = b.reg.expect("a register operand");
                        self.fb.ins().splat(types::F64X2, x)
                    }
                    None => b.reg.expect("a register operand"),
                }
            })
            .collect();
        for row in 0..t.height {
            let x = match pa {
                Some(pa) => self.load_at(types::F64, pa, 8 * row as i64 * a.row),
                None => a.reg.expect("a register operand"),
            };
            let xv = if t.groups.iter().any(|g| g.1 == 2) {
                Some(self.fb.ins().splat(types::F64X2, x))
            } else {
                None
            };
            for (g, &(_, lanes)) in t.groups.iter().enumerate() {
                let acc = accs[row * t.groups.len() + g];
                let factor = if lanes == 2 {
                    xv.expect("splat for vector groups")
                } else {
                    x
                };
                let s = self.fb.use_var(acc);
                // The first factor is overwritten by the FMA instruction (x86's only forms
                // overwrite a factor): B's in the last row, where it is read for the last time.
                let s = if row + 1 == t.height {
                    self.fb.ins().fma(bs[g], factor, s)
                } else {
                    self.fb.ins().fma(factor, bs[g], s)
                };
                self.fb.def_var(acc, s);
            }
        }
    }

    /// Stores a tile's accumulators at `pc`, the tile's first element of C; with no memory for
    /// C (a one-element product), returns the last (the only) one instead.
    fn tile_store(&mut self, t: &Tile, accs: &[Variable], pc: Option<CV>) -> Option<CV> {
        let n = t.n as i64;
        let mut result = None;
        for row in 0..t.height {
            for (g, &(col, _)) in t.groups.iter().enumerate() {
                let total = self.fb.use_var(accs[row * t.groups.len() + g]);
                match pc {
                    Some(pc) => self.store_at(total, pc, 8 * (row as i64 * n + col as i64)),
                    None => result = Some(total),
                }
            }
        }
        result
    }
}
