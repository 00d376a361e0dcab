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

/// Why no tensor may have a type: its rank, a dimension or its element count exceeds the
/// limits (`MAX_RANK`, `u32::MAX`, `MAX_ELEMENTS`). The Builder, the reader and the verifier all
/// report this one message, so a shape refused by one is refused alike by the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeError {
    pub message: String,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TypeError {}

/// `f64[2,3]` for a shape that may not fit in `Dims`; past `MAX_RANK + 1` entries, `…`.
fn spell(dtype: DType, shape: &[usize]) -> String {
    let mut dims: Vec<String> = shape
        .iter()
        .take(MAX_RANK + 1)
        .map(|d| d.to_string())
        .collect();
    if shape.len() > MAX_RANK + 1 {
        dims.push("…".into());
    }
    format!("{}[{}]", dtype.name(), dims.join(","))
}

impl Type {
    /// The type of the given element type and shape, or why no tensor may have it. The one
    /// check of the limits, shared by the Builder, the reader and the verifier.
    pub fn try_new(dtype: DType, shape: &[usize]) -> Result<Type, TypeError> {
        let refuse = |why: String| TypeError {
            message: format!("type {} {why}", spell(dtype, shape)),
        };
        if shape.len() > MAX_RANK {
            return Err(refuse(format!(
                "has {} dimensions (at most {MAX_RANK})",
                shape.len()
            )));
        }
        if let Some(&d) = shape.iter().find(|&&d| d > u32::MAX as usize) {
            return Err(refuse(format!(
                "has a dimension {d} that is too large (at most {})",
                u32::MAX
            )));
        }
        Type {
            dtype,
            shape: Dims::new(shape),
        }
        .checked()
    }

    /// The type itself if it is within the limits (its rank and dimensions are, by `Dims`;
    /// this checks the element count), or why not.
    pub fn checked(self) -> Result<Type, TypeError> {
        if self.shape.product() > MAX_ELEMENTS {
            return Err(TypeError {
                message: format!("type {self} has more than {MAX_ELEMENTS} elements"),
            });
        }
        Ok(self)
    }

    /// `try_new` for Rust callers: panics with its message on a shape beyond the limits.
    #[track_caller]
    pub fn new(dtype: DType, shape: &[usize]) -> Type {
        match Type::try_new(dtype, shape) {
            Ok(t) => t,
            Err(e) => panic!("adjit: {e}"),
        }
    }

    /// An f64 tensor of the given shape (panics on a shape beyond the limits).
    #[track_caller]
    pub fn f64(shape: &[usize]) -> Type {
        Type::new(DType::F64, shape)
    }

    /// The scalar `f64[]`.
    pub const fn scalar() -> Type {
        Type {
            dtype: DType::F64,
            shape: Dims::scalar(),
        }
    }

    /// A bool tensor of the given shape (panics on a shape beyond the limits).
    #[track_caller]
    pub fn bool(shape: &[usize]) -> Type {
        Type::new(DType::Bool, shape)
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

    /// Number of elements. Types are checked against `MAX_ELEMENTS` by the Builder, the reader
    /// and the verifier, so this fits.
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
    fn limits_are_one_error() {
        let msg = |shape: &[usize]| Type::try_new(DType::F64, shape).unwrap_err().message;
        assert_eq!(
            msg(&[1; 9]),
            "type f64[1,1,1,1,1,1,1,1,1] has 9 dimensions (at most 8)"
        );
        assert!(msg(&[1 << 33]).contains("too large"), "{}", msg(&[1 << 33]));
        assert_eq!(
            msg(&[100000, 100000]),
            "type f64[100000,100000] has more than 4294967296 elements"
        );
        assert!(Type::try_new(DType::Bool, &[65536, 65536]).is_ok());
        let big = Type::scalar().with_shape(Dims::new(&[65537, 65536]));
        assert!(big.checked().is_err());
    }

    #[test]
    fn rank_limit_is_an_error() {
        assert!(Dims::try_new(&[1; 9]).is_err());
        assert!(Dims::try_new(&[1; 8]).is_ok());
        assert!(Dims::try_new(&[usize::MAX]).is_err());
    }
}
