//! Products that share a matrix, batched into one product. Forward-over-reverse hvps and jvps
//! make such pairs: `X w` beside `X v`, `X^T r` beside `X^T s`, and with matrices, `H W`
//! beside `T W`.
//!
//! Every product with a vector operand is seen as a row times a matrix: `A b` (a column `b`)
//! is `b^T A^T`, and `a^T B` is itself. Products of one matrix, read the same way, whose rows
//! do not depend on one another become one `[b_1; ...; b_N] · op(B)` whose row `j` is product
//! `j`: the matrix is read once, not N times. Products of two matrices `A_j op(B)` that share
//! `B` (read the same way) become `[A_1; ...; A_N] op(B)`, sliced back into blocks of rows;
//! narrow ones `op(A) B_j` that share `A` become `op(A) [B_1 | ... | B_N]`, sliced back into
//! blocks of columns. Each result element is the same `fma` chain as before, over the same terms in the
//! same order (`fma` is symmetric in its two factors), so the bits do not change. Since the
//! batched product needs every operand, the instructions reading an earlier product move
//! after the later ones (a stable topological order).

use super::simplifying_builder;
use crate::ir::{Body, Def, Dims, Func, Op, Value};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// A product of a vector and a matrix, as `row · op(matrix)`.
#[derive(Clone, Copy)]
struct Product {
    inst: usize,
    row: Value,
    matrix: Value,
    /// `tb` of the row form: whether the matrix is read transposed.
    transposed: bool,
    /// The row's length, and the result's.
    k: usize,
    len: usize,
}

/// Fewest elements a shared matrix must have for its products to be batched (below this the
/// copies into the stacked rows cost about what reading the matrix again does).
const MIN_MATRIX: usize = 64;

/// `inst` `k` of `f` as a row times a matrix, if it is a rank-2 matmul with one operand a
/// vector (one dimension 1) and the other a matrix.
fn product(f: &Func, k: usize) -> Option<Product> {
    let inst = &f.insts[k];
    let Op::Matmul { ta, tb } = inst.op else {
        return None;
    };
    let (a, b) = (inst.args[0], inst.args[1]);
    let (ta_ty, tb_ty) = (f.value_type(a), f.value_type(b));
    if ta_ty.rank() != 2 {
        return None;
    }
    let m = inst.ty.shape.get(0);
    let n = inst.ty.shape.get(1);
    let inner = if ta {
        ta_ty.shape.get(0)
    } else {
        ta_ty.shape.get(1)
    };
    let (row, matrix, transposed, len) = if n == 1 && m >= 2 {
        // `A b` = `b^T A^T`: the matrix is read transposed unless A already is.
        (b, a, !ta, m)
    } else if m == 1 && n >= 2 {
        (a, b, tb, n)
    } else {
        return None;
    };
    let big = f.value_type(matrix).numel() >= MIN_MATRIX;
    (inner >= 1 && big && tb_ty.rank() == 2).then_some(Product {
        inst: k,
        row,
        matrix,
        transposed,
        k: inner,
        len,
    })
}

/// A product of two matrices, `A op(B)` with both result dimensions at least 2, whose `B` it
/// may share with other products.
#[derive(Clone, Copy)]
struct Block {
    inst: usize,
    /// The operand joined with those of the other products: the left one, stacked along rows
    /// (`axis` 0), or the right one, joined along columns (`axis` 1).
    other: Value,
    /// The other operand, shared, and whether it is read transposed.
    shared: Value,
    shared_t: bool,
    axis: usize,
    /// The result's shape.
    rows: usize,
    cols: usize,
}

/// `inst` `k` of `f` as a block product, if its right operand is a large enough matrix to
/// share and its left one is read as it is stored: stacked along its rows, the left operands
/// form one contiguous matrix (which loops can compute in place) and the members' results
/// are contiguous row blocks. (Stacking right operands instead, `X [W | V]`, copied the
/// weights and left every result strided: `mlp`'s hvp ran 9% slower.)
fn block(f: &Func, k: usize) -> Option<Block> {
    let inst = &f.insts[k];
    let Op::Matmul { ta: false, tb } = inst.op else {
        return None;
    };
    let (a, b) = (inst.args[0], inst.args[1]);
    let ranks = (f.value_type(a).rank(), f.value_type(b).rank());
    let (m, n) = (inst.ty.shape.get(0), inst.ty.shape.get(1));
    let big = f.value_type(b).numel() >= MIN_MATRIX;
    (ranks == (2, 2) && m >= 2 && n >= 2 && big).then_some(Block {
        inst: k,
        other: a,
        shared: b,
        shared_t: tb,
        axis: 0,
        rows: m,
        cols: n,
    })
}

/// Fewest columns a product needs to be left out of the narrow products batched by their
/// shared left operand: a product this wide fills the vector tiles already.
const NARROW_COLUMNS: usize = 16;

/// `inst` `k` of `f` as a narrow product `op(A) B` (at least 2 rows, 2 to `NARROW_COLUMNS - 1`
/// columns, B read as stored), if its left operand is a large enough matrix to share. Joined,
/// `X [W | V]`, the products fill wider tiles in one call where each used part of its own:
/// `softmax`'s jvp multiplies `X` (64x20) by its weights (20x10) and their tangent. (Wide
/// products are not joined: for `mlp`'s weights the copy of the right operands and the strided
/// results cost more, its hvp ran 9% slower.)
fn narrow(f: &Func, k: usize) -> Option<Block> {
    let inst = &f.insts[k];
    let Op::Matmul { ta, tb: false } = inst.op else {
        return None;
    };
    let (a, b) = (inst.args[0], inst.args[1]);
    let ranks = (f.value_type(a).rank(), f.value_type(b).rank());
    let (m, n) = (inst.ty.shape.get(0), inst.ty.shape.get(1));
    let big = f.value_type(a).numel() >= MIN_MATRIX;
    (ranks == (2, 2) && m >= 2 && (2..NARROW_COLUMNS).contains(&n) && big).then_some(Block {
        inst: k,
        other: b,
        shared: a,
        shared_t: ta,
        axis: 1,
        rows: m,
        cols: n,
    })
}

/// Of `candidates` (an instruction and the operand it stacks, in instruction order), the
/// positions of those whose operand depends on no earlier chosen one, if at least two: one
/// walk from the first on, marking what depends on a chosen instruction.
fn independent(f: &Func, candidates: &[(usize, Value)]) -> Option<Vec<usize>> {
    let np = f.params.len();
    let mut tainted = vec![false; f.num_values()];
    let mut chosen = Vec::new();
    let mut next = 0;
    for k in candidates.first()?.0..f.insts.len() {
        if next < candidates.len() && candidates[next].0 == k {
            let operand = candidates[next].1;
            next += 1;
            if !tainted[operand.index()] {
                chosen.push(next - 1);
                tainted[np + k] = true;
                continue;
            }
        }
        if f.insts[k].args.iter().any(|a| tainted[a.index()]) {
            tainted[np + k] = true;
        }
    }
    (chosen.len() >= 2).then_some(chosen)
}

/// The first group to batch among `products` (in instruction order): products with one key
/// (the shared matrix and how it is read), at least two, none of whose stacked operand depends
/// on an earlier member (so the batched product can be computed once every operand is).
fn first_group<P: Copy, K: Copy + Eq + std::hash::Hash>(
    f: &Func,
    products: impl Iterator<Item = P>,
    key: impl Fn(&P) -> K,
    stacked: impl Fn(&P) -> (usize, Value),
) -> Option<Vec<P>> {
    let mut by_key: HashMap<K, Vec<P>> = HashMap::new();
    let mut keys = Vec::new();
    for p in products {
        if !by_key.contains_key(&key(&p)) {
            keys.push(key(&p));
        }
        by_key.entry(key(&p)).or_default().push(p);
    }
    keys.into_iter().find_map(|k| {
        let candidates = &by_key[&k];
        let pairs: Vec<(usize, Value)> = candidates.iter().map(&stacked).collect();
        let chosen = independent(f, &pairs)?;
        Some(chosen.into_iter().map(|i| candidates[i]).collect())
    })
}

/// The first group of vector products of one matrix read one way.
fn row_group(f: &Func) -> Option<Vec<Product>> {
    let products = (0..f.insts.len()).filter_map(|k| product(f, k));
    first_group(
        f,
        products,
        |p| (p.matrix, p.transposed),
        |p| (p.inst, p.row),
    )
}

/// The first group of block products sharing one operand read one way: the right one
/// (`as_block` is `block`) or, for narrow products, the left one (`narrow`).
fn block_group(f: &Func, as_block: fn(&Func, usize) -> Option<Block>) -> Option<Vec<Block>> {
    let products = (0..f.insts.len()).filter_map(|k| as_block(f, k));
    first_group(
        f,
        products,
        |p| (p.shared, p.shared_t),
        |p| (p.inst, p.other),
    )
}

/// A group of products to batch: vector products of one matrix, or block products sharing
/// their right operand (or, narrow, their left one).
enum Group {
    Rows(Vec<Product>),
    Blocks(Vec<Block>),
}

impl Group {
    /// Each member's instruction and the operand it stacks, in instruction order.
    fn members(&self) -> Vec<(usize, Value)> {
        match self {
            Group::Rows(ps) => ps.iter().map(|p| (p.inst, p.row)).collect(),
            Group::Blocks(ps) => ps.iter().map(|p| (p.inst, p.other)).collect(),
        }
    }

    fn shared(&self) -> Value {
        match self {
            Group::Rows(ps) => ps[0].matrix,
            Group::Blocks(ps) => ps[0].shared,
        }
    }

    fn emit(&self, f: &Func, b: &crate::ir::Builder, map: &mut [Value]) {
        match self {
            Group::Rows(ps) => emit_group(f, b, ps, map),
            Group::Blocks(ps) => emit_blocks(f, b, ps, map),
        }
    }
}

/// Something to emit: an instruction as it is, or the group's batched product.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Item {
    Inst(usize),
    Group,
}

/// `f` with the products of each shared matrix batched (see the module doc), scan bodies
/// included. One group at a time, each on the function the last one left: a group's rows
/// never wait on its own products, so every step has a valid order (two groups batched at
/// once could each wait on the other). Returns `f` itself when nothing changes. `f` must be
/// valid; so is the result.
pub fn batch_products(f: Func) -> Func {
    let mut f = batch_bodies(f);
    loop {
        let group = match row_group(&f) {
            Some(rows) => Group::Rows(rows),
            None => match block_group(&f, block).or_else(|| block_group(&f, narrow)) {
                Some(blocks) => Group::Blocks(blocks),
                None => return f,
            },
        };
        f = batch_group(f, &group);
    }
}

/// `f` with one group's products replaced by their batched product, in a stable topological
/// order (the batched product at its last member's place).
fn batch_group(f: Func, group: &Group) -> Func {
    let np = f.params.len();
    let members = group.members();
    let mut member = vec![false; f.insts.len()];
    for &(k, _) in &members {
        member[k] = true;
    }
    let item_of = |k: usize| {
        if member[k] {
            Item::Group
        } else {
            Item::Inst(k)
        }
    };
    let last = members.last().expect("a group has members").0;
    let place = |item: Item| match item {
        Item::Inst(k) => k,
        Item::Group => last,
    };
    let operands = |item: Item| -> Vec<Value> {
        match item {
            Item::Inst(k) => f.insts[k].args.to_vec(),
            Item::Group => {
                let mut v: Vec<Value> = members.iter().map(|&(_, operand)| operand).collect();
                v.push(group.shared());
                v
            }
        }
    };
    // Kahn's algorithm, the earliest place first.
    let items: Vec<Item> = (0..f.insts.len())
        .filter(|&k| !member[k])
        .map(Item::Inst)
        .chain([Item::Group])
        .collect();
    let mut waiting: HashMap<Item, usize> = HashMap::new();
    let mut readers: HashMap<Item, Vec<Item>> = HashMap::new();
    let mut ready = BinaryHeap::new();
    for &item in &items {
        let mut producers: Vec<Item> = operands(item)
            .iter()
            .filter_map(|a| match f.def(*a) {
                Def::Inst(k) => Some(item_of(k)),
                Def::Param(_) => None,
            })
            .collect();
        producers.sort_unstable();
        producers.dedup();
        for &p in &producers {
            readers.entry(p).or_default().push(item);
        }
        waiting.insert(item, producers.len());
        if producers.is_empty() {
            ready.push(Reverse((place(item), item)));
        }
    }
    let b = simplifying_builder(f.name.clone(), f.insts.len() + 3 * members.len() + 2);
    let mut map: Vec<Value> = vec![Value(u32::MAX); f.num_values()];
    for (i, p) in f.params.iter().enumerate() {
        map[i] = b.param_with(&p.name, p.ty, p.role, p.init).value();
    }
    let mut emitted = 0;
    while let Some(Reverse((_, item))) = ready.pop() {
        emitted += 1;
        match item {
            Item::Inst(k) => {
                let inst = &f.insts[k];
                let args: Vec<Value> = inst.args.iter().map(|a| map[a.index()]).collect();
                let v = b.op(inst.op.clone(), &args).value();
                if let Some(n) = &inst.name {
                    b.name_if_unnamed(v, n);
                }
                map[np + k] = v;
            }
            Item::Group => group.emit(&f, &b, &mut map),
        }
        for &r in readers.get(&item).map(Vec::as_slice).unwrap_or(&[]) {
            let w = waiting.get_mut(&r).expect("every item waits");
            *w -= 1;
            if *w == 0 {
                ready.push(Reverse((place(r), r)));
            }
        }
    }
    if emitted < items.len() {
        // Cannot happen (no row depends on a member); kept as it is rather than broken.
        return f;
    }
    let results: Vec<Value> = f.results.iter().map(|r| map[r.index()]).collect();
    super::dce(b.finish_unverified(&results))
}

/// Emits one group's batched product and points every member at its row.
fn emit_group(f: &Func, b: &crate::ir::Builder, members: &[Product], map: &mut [Value]) {
    let np = f.params.len();
    let (k, len) = (members[0].k, members[0].len);
    // Members with one row (`A^T u` and `u^T A`) share it.
    let mut rows: Vec<Value> = Vec::new();
    let mut row_of = Vec::with_capacity(members.len());
    for p in members {
        let shape = Op::Reshape {
            shape: Dims::new(&[1, k]),
        };
        let row = b.op(shape, &[map[p.row.index()]]).value();
        let j = rows.iter().position(|&r| r == row).unwrap_or_else(|| {
            rows.push(row);
            rows.len() - 1
        });
        row_of.push(j);
    }
    let stacked = b.op(Op::Concat { axis: 0 }, &rows).value();
    let matmul = Op::Matmul {
        ta: false,
        tb: members[0].transposed,
    };
    let batched = b
        .op(matmul, &[stacked, map[members[0].matrix.index()]])
        .value();
    for (p, &j) in members.iter().zip(&row_of) {
        let slice = Op::Slice {
            start: Dims::new(&[j, 0]),
            stop: Dims::new(&[j + 1, len]),
        };
        let row = b.op(slice, &[batched]).value();
        let shape = Op::Reshape {
            shape: f.insts[p.inst].ty.shape,
        };
        let v = b.op(shape, &[row]).value();
        if let Some(n) = &f.insts[p.inst].name {
            b.name_if_unnamed(v, n);
        }
        map[np + p.inst] = v;
    }
}

/// Emits one group of block products as one product of the left operands stacked along rows
/// (or the right ones joined along columns), and points every member at its block of the
/// result.
fn emit_blocks(f: &Func, b: &crate::ir::Builder, members: &[Block], map: &mut [Value]) {
    let np = f.params.len();
    let axis = members[0].axis;
    let extent = |p: &Block| if axis == 0 { p.rows } else { p.cols };
    // Each distinct operand once, at its first row (or column) in the join.
    let mut operands: Vec<Value> = Vec::new();
    let mut firsts: Vec<usize> = Vec::new();
    let mut size = 0;
    let mut first = Vec::with_capacity(members.len());
    for p in members {
        let v = map[p.other.index()];
        let j = operands.iter().position(|&o| o == v).unwrap_or_else(|| {
            operands.push(v);
            firsts.push(size);
            size += extent(p);
            operands.len() - 1
        });
        first.push(firsts[j]);
    }
    let joined = b.op(Op::Concat { axis: axis as u32 }, &operands).value();
    let shared = map[members[0].shared.index()];
    let t = members[0].shared_t;
    let batched = if axis == 0 {
        let matmul = Op::Matmul { ta: false, tb: t };
        b.op(matmul, &[joined, shared]).value()
    } else {
        let matmul = Op::Matmul { ta: t, tb: false };
        b.op(matmul, &[shared, joined]).value()
    };
    for (p, &at) in members.iter().zip(&first) {
        let (start, stop) = if axis == 0 {
            ([at, 0], [at + p.rows, p.cols])
        } else {
            ([0, at], [p.rows, at + p.cols])
        };
        let slice = Op::Slice {
            start: Dims::new(&start),
            stop: Dims::new(&stop),
        };
        let v = b.op(slice, &[batched]).value();
        if let Some(n) = &f.insts[p.inst].name {
            b.name_if_unnamed(v, n);
        }
        map[np + p.inst] = v;
    }
}

/// `f` with every scan body (and replay step) batched in turn.
fn batch_bodies(mut f: Func) -> Func {
    for inst in f.insts.iter_mut() {
        if let Op::Scan { body, replay, .. } = &mut inst.op {
            *body = batch_body(body);
            if let Some(r) = replay {
                *r = batch_body(r);
            }
        }
    }
    f
}

fn batch_body(body: &Body) -> Body {
    let before = body.func();
    let after = batch_products(before.clone());
    if after == *before {
        body.clone()
    } else {
        Body::new(after)
    }
}
