//! Element types, static shapes and value types: the `f64[3,4]` of the text form.
//!
//! Shapes are small inline arrays (`Dims`), so `Type` is `Copy` and a million-instruction function
//! holds no per-value heap allocation for its types.

use std::fmt;

/// The largest rank a tensor may have.
pub const MAX_RANK: usize = 8;

/// The largest number of elements one tensor may hold (2^32): bigger shapes are rejected when
/// they are built or parsed, before anything tries to allocate them.
pub const MAX_ELEMENTS: u64 = 1 << 32;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F64,
    /// Masks from comparisons. Stored as `0.0`/`1.0` in f64 slots by the interpreter and the JIT.
    Bool,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F64 => "f64",
            DType::Bool => "bool",
        }
    }

    pub fn from_name(name: &str) -> Option<DType> {
        match name {
            "f64" => Some(DType::F64),
            "bool" => Some(DType::Bool),
            _ => None,
        }
    }
}

/// A short list of small non-negative integers stored inline: a shape, an axis list, a
/// permutation, slice bounds. Unused slots are always zero, so derived `Eq` and `Hash` are exact.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Dims {
    len: u8,
    d: [u32; MAX_RANK],
}

impl Dims {
    /// The empty list: the shape of a scalar.
    pub const fn scalar() -> Dims {
        Dims {
            len: 0,
            d: [0; MAX_RANK],
        }
    }

    /// Builds a list, or says why it cannot (too long, or an entry beyond `u32`).
    pub fn try_new(items: &[usize]) -> Result<Dims, String> {
        if items.len() > MAX_RANK {
            return Err(format!(
                "{} entries exceed the maximum rank {MAX_RANK}",
                items.len()
            ));
        }
        let mut d = [0u32; MAX_RANK];
        for (slot, &x) in d.iter_mut().zip(items) {
            *slot =
                u32::try_from(x).map_err(|_| format!("{x} is too large (at most {})", u32::MAX))?;
        }
        Ok(Dims {
            len: items.len() as u8,
            d,
        })
    }

    /// Builds a list; panics with a clear message for Rust callers that pass a bad one.
    #[track_caller]
    pub fn new(items: &[usize]) -> Dims {
        match Dims::try_new(items) {
            Ok(d) => d,
            Err(e) => panic!("invalid dims {items:?}: {e}"),
        }
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entry `i` as a `usize`.
    #[track_caller]
    pub fn get(&self, i: usize) -> usize {
        assert!(i < self.len(), "index {i} out of range for {self}");
        self.d[i] as usize
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.d[..self.len()].iter().map(|&x| x as usize)
    }

    pub fn to_vec(&self) -> Vec<usize> {
        self.iter().collect()
    }

    pub fn contains(&self, x: usize) -> bool {
        self.iter().any(|y| y == x)
    }

    /// Product of the entries (1 for the empty list), saturating rather than overflowing.
    pub fn product(&self) -> u64 {
        self.iter()
            .fold(1u64, |acc, x| acc.saturating_mul(x as u64))
    }

    /// Row-major strides of a shape, in elements.
    pub fn strides(&self) -> Vec<usize> {
        let mut s = vec![0; self.len()];
        let mut acc = 1usize;
        for i in (0..self.len()).rev() {
            s[i] = acc;
            acc = acc.saturating_mul(self.d[i] as usize);
        }
        s
    }
}

impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, x) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The type of a value: element type and static shape.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Type {
    pub dtype: DType,
    pub shape: Dims,
}

impl Type {
    /// An f64 tensor of the given shape (panics on a rank above `MAX_RANK`).
    #[track_caller]
    pub fn f64(shape: &[usize]) -> Type {
        Type {
            dtype: DType::F64,
            shape: Dims::new(shape),
        }
    }

    /// The scalar `f64[]`.
    pub const fn scalar() -> Type {
        Type {
            dtype: DType::F64,
            shape: Dims::scalar(),
        }
    }

    /// A bool tensor of the given shape.
    #[track_caller]
    pub fn bool(shape: &[usize]) -> Type {
        Type {
            dtype: DType::Bool,
            shape: Dims::new(shape),
        }
    }

    pub fn with_dtype(self, dtype: DType) -> Type {
        Type { dtype, ..self }
    }

    pub fn with_shape(self, shape: Dims) -> Type {
        Type { shape, ..self }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements. Shapes are checked against `MAX_ELEMENTS` when built, so this fits.
    pub fn numel(&self) -> usize {
        self.shape.product() as usize
    }

    pub fn is_scalar(&self) -> bool {
        self.shape.is_empty()
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype.name(), self.shape)
    }
}

impl fmt::Debug for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_strides() {
        let t = Type::f64(&[2, 3, 4]);
        assert_eq!(t.to_string(), "f64[2,3,4]");
        assert_eq!(Type::scalar().to_string(), "f64[]");
        assert_eq!(t.shape.strides(), vec![12, 4, 1]);
        assert_eq!(t.numel(), 24);
        assert_eq!(Type::scalar().numel(), 1);
    }

    #[test]
    fn rank_limit_is_an_error() {
        assert!(Dims::try_new(&[1; 9]).is_err());
        assert!(Dims::try_new(&[1; 8]).is_ok());
        assert!(Dims::try_new(&[usize::MAX]).is_err());
    }
}
