//! The matmul kernel compiled for AVX2 and FMA: four-lane vectors, which Cranelift cannot emit
//! (its x64 backend stops at 128 bits). Compiled code calls it for products large enough
//! (`jit::lower::matmul`) where the CPU has both features; object files, which link against
//! the C library alone, keep the tiles Cranelift emits. The interpreter keeps the portable
//! kernel of `ops::contract`, an independent oracle for this one.
//!
//! The result is computed in tiles of 4 rows by 8 columns (two four-lane vectors per row),
//! whose eight accumulators stay in registers across the whole contraction; narrower tiles of
//! 4 and 2 columns, and single elements, take what is left. Each element is still the chain
//! `acc = fma(A(i,p), B(p,j), acc)` for `p` ascending from `+0.0`, the definition in
//! `ops::contract`: the tiles group elements, never the terms of one sum, so the results equal
//! the portable kernel's bit for bit. A B not contiguous along its columns is first copied,
//! row-major, into the caller's scratch.

/// A product as compiled code passes it (`#[repr(C)]`, every field 8 bytes): pointers, sizes
/// and element strides. `A(i,p)` is at `a + i*a_row + p*a_col`, `B(p,j)` at
/// `b + p*b_row + j*b_col`, each batch entry `a_batch` and `b_batch` further on; the result is
/// row-major, `m*n` elements per batch entry. `scratch` holds `k*n` elements when
/// `b_col != 1`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GemmArgs {
    pub a: *const f64,
    pub b: *const f64,
    pub c: *mut f64,
    pub scratch: *mut f64,
    pub batch: i64,
    pub m: i64,
    pub k: i64,
    pub n: i64,
    pub a_row: i64,
    pub a_col: i64,
    pub a_batch: i64,
    pub b_row: i64,
    pub b_col: i64,
    pub b_batch: i64,
}

/// The C symbol under which compiled code imports `gemm`.
pub const SYMBOL: &str = "adjit_gemm_avx2";

/// Whether this CPU runs the kernel (AVX2 and FMA).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The kernel's address for compiled code, where the CPU runs it.
pub fn address() -> Option<*const u8> {
    #[cfg(target_arch = "x86_64")]
    if available() {
        return Some(gemm as *const u8);
    }
    None
}

/// The entry compiled code calls.
///
/// # Safety
/// `args` points at a `GemmArgs` whose pointers and strides stay inside live buffers for every
/// element the product reads and writes, the result not overlapping the operands or scratch;
/// the CPU has AVX2 and FMA (`available`).
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn gemm(args: *const GemmArgs) -> i64 {
    // SAFETY: the caller's promise above.
    unsafe { gemm_avx2(&*args) };
    0
}

/// Runs the product described by `x` (see `gemm`'s promise).
///
/// # Safety
/// As `gemm`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm_avx2(x: &GemmArgs) {
    let (m, k, n) = (x.m as usize, x.k as usize, x.n as usize);
    for t in 0..x.batch as isize {
        // SAFETY (this block): every offset below stays inside the buffers, by the promise.
        unsafe {
            let a = x.a.offset(t * x.a_batch as isize);
            let mut b = x.b.offset(t * x.b_batch as isize);
            let mut b_row = x.b_row as isize;
            if x.b_col != 1 {
                // Written in order (reading in order instead, for a transposed B, measured
                // slower on `mlp`'s gradient).
                for p in 0..k as isize {
                    for j in 0..n as isize {
                        *x.scratch.offset(p * n as isize + j) =
                            *b.offset(p * b_row + j * x.b_col as isize);
                    }
                }
                b = x.scratch;
                b_row = n as isize;
            }
            let c = x.c.offset(t * (m * n) as isize);
            let tile = Tile {
                a,
                a_row: x.a_row as isize,
                a_col: x.a_col as isize,
                b,
                b_row,
                c,
                n,
                k,
            };
            tile.rows(m);
        }
    }
}

/// One batch entry: B contiguous along its columns, C row-major `n` wide.
#[cfg(target_arch = "x86_64")]
struct Tile {
    a: *const f64,
    a_row: isize,
    a_col: isize,
    b: *const f64,
    b_row: isize,
    c: *mut f64,
    n: usize,
    k: usize,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// Every row: in groups of four, then one at a time.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows(&self, m: usize) {
        let mut i = 0;
        while i + 4 <= m {
            // SAFETY: rows i..i+4 exist (the caller's promise covers all m rows).
            unsafe { self.row_block::<4>(i) };
            i += 4;
        }
        while i < m {
            // SAFETY: as above, for row i.
            unsafe { self.row_block::<1>(i) };
            i += 1;
        }
    }

    /// Rows `i..i+R` across every column: 8 at a time, then 4, then 2, then one.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_block<const R: usize>(&self, i: usize) {
        use std::arch::x86_64::*;
        let mut j = 0;
        while j + 8 <= self.n {
            // SAFETY (this block): rows i..i+R and columns j..j+8 are inside A, B and C.
            unsafe {
                let mut acc = [[_mm256_setzero_pd(); 2]; R];
                for p in 0..self.k as isize {
                    let bp = self.b.offset(p * self.b_row + j as isize);
                    let (b0, b1) = (_mm256_loadu_pd(bp), _mm256_loadu_pd(bp.add(4)));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let ap = self
                            .a
                            .offset((i + r) as isize * self.a_row + p * self.a_col);
                        let x = _mm256_broadcast_sd(&*ap);
                        acc[0] = _mm256_fmadd_pd(x, b0, acc[0]);
                        acc[1] = _mm256_fmadd_pd(x, b1, acc[1]);
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    let cp = self.c.add((i + r) * self.n + j);
                    _mm256_storeu_pd(cp, acc[0]);
                    _mm256_storeu_pd(cp.add(4), acc[1]);
                }
            }
            j += 8;
        }
        while j + 4 <= self.n {
            // SAFETY (this block): rows i..i+R and columns j..j+4 are inside A, B and C.
            unsafe {
                let mut acc = [_mm256_setzero_pd(); R];
                for p in 0..self.k as isize {
                    let b0 = _mm256_loadu_pd(self.b.offset(p * self.b_row + j as isize));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let ap = self
                            .a
                            .offset((i + r) as isize * self.a_row + p * self.a_col);
                        *acc = _mm256_fmadd_pd(_mm256_broadcast_sd(&*ap), b0, *acc);
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    _mm256_storeu_pd(self.c.add((i + r) * self.n + j), *acc);
                }
            }
            j += 4;
        }
        while j + 2 <= self.n {
            // SAFETY (this block): rows i..i+R and columns j..j+2 are inside A, B and C.
            unsafe {
                let mut acc = [_mm_setzero_pd(); R];
                for p in 0..self.k as isize {
                    let b0 = _mm_loadu_pd(self.b.offset(p * self.b_row + j as isize));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let ap = self
                            .a
                            .offset((i + r) as isize * self.a_row + p * self.a_col);
                        *acc = _mm_fmadd_pd(_mm_set1_pd(*ap), b0, *acc);
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    _mm_storeu_pd(self.c.add((i + r) * self.n + j), *acc);
                }
            }
            j += 2;
        }
        for j in j..self.n {
            for r in 0..R {
                let mut s = 0.0f64;
                for p in 0..self.k as isize {
                    // SAFETY: element (i+r, p) of A and (p, j) of B exist.
                    let (x, y) = unsafe {
                        (
                            *self
                                .a
                                .offset((i + r) as isize * self.a_row + p * self.a_col),
                            *self.b.offset(p * self.b_row + j as isize),
                        )
                    };
                    s = x.mul_add(y, s);
                }
                // SAFETY: element (i+r, j) of C exists.
                unsafe { *self.c.add((i + r) * self.n + j) = s };
            }
        }
    }
}
