//! `ValueMap`: a side table with one entry per value of a function, indexed by `Value`, in
//! place of parallel vectors indexed by `usize`.

use crate::ir::Value;
use std::ops::{Index, IndexMut};

/// One `T` per value of a function, indexed by `Value`.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueMap<T> {
    items: Vec<T>,
}

impl<T: Clone> ValueMap<T> {
    /// `x` for each of `n` values.
    pub fn filled(n: usize, x: T) -> ValueMap<T> {
        ValueMap { items: vec![x; n] }
    }
}

impl<T> ValueMap<T> {
    /// `entry(v)` for each of `n` values, in order.
    pub fn from_fn(n: usize, entry: impl FnMut(Value) -> T) -> ValueMap<T> {
        ValueMap {
            items: (0..n as u32).map(Value).map(entry).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T> Index<Value> for ValueMap<T> {
    type Output = T;

    fn index(&self, v: Value) -> &T {
        &self.items[v.index()]
    }
}

impl<T> IndexMut<Value> for ValueMap<T> {
    fn index_mut(&mut self, v: Value) -> &mut T {
        &mut self.items[v.index()]
    }
}
