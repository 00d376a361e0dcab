//! The machinery of the op table: `op_table!` turns the one list of ops written in `op.rs` into
//! everything derived from it, so that no list of ops is kept by hand anywhere else.
//!
//! From each entry it derives: the enums `Unary`, `Binary`, `Compare`, `Opcode` and `Op`; every
//! `ALL` list; the text names both ways (`name`, `from_name`); the operand count (`arity`); the
//! attribute spellings, which are the field names of the op's variant, for the reader
//! (`Opcode::attribute_names`, `Op::from_attributes`) and the writer (`Op::attributes`); and,
//! for elementwise functions computed by a host call, the host function itself (`host`, whose
//! symbol is the function's Rust name). `const` is built in: its data is a literal, not
//! attributes.
//!
//! Knows nothing of what the ops mean: the math lives in `crate::ops`.

/// Defines the op enums and their derived tables from one list; see the module doc and the
/// invocation in `op.rs`.
macro_rules! op_table {
    // The `host` column: no function, or the function of that name in `crate::ops::<family>`.
    (@host $family:ident $fn_type:ident) => {
        None
    };
    (@host $family:ident $fn_type:ident, $f:ident) => {
        Some(HostFn {
            symbol: stringify!($f),
            f: crate::ops::$family::$f as $fn_type,
        })
    };
    (
        unary { $( $(#[$ud:meta])* $u:ident = $un:literal $(, host $uf:ident)?; )* }
        binary { $( $(#[$bd:meta])* $b:ident = $bn:literal $(, host $bf:ident)?; )* }
        compare { $( $(#[$cd:meta])* $c:ident = $cn:literal; )* }
        $(#[$opdoc:meta])*
        other {
            $( $(#[$od:meta])* $o:ident = $on:literal, $arity:expr
               $(, { $( $field:ident : $fty:ty ),* })?; )*
        }
    ) => {
        /// Elementwise functions of one f64 argument.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Unary { $( $(#[$ud])* $u, )* }

        impl Unary {
            /// Every unary op, in table order.
            pub const ALL: [Unary; [$($un),*].len()] = [$(Unary::$u),*];

            /// The op's word in the text form.
            pub fn name(self) -> &'static str {
                match self { $( Unary::$u => $un, )* }
            }

            /// The host function compiled code calls for this op, if it is computed by one
            /// (others are single machine instructions).
            pub fn host(self) -> Option<HostFn<UnaryFn>> {
                match self {
                    $( Unary::$u => {
                        op_table!(@host unary UnaryFn $(, $uf)?)
                    } )*
                }
            }
        }

        /// Elementwise functions of two f64 arguments of equal type.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Binary { $( $(#[$bd])* $b, )* }

        impl Binary {
            /// Every binary op, in table order.
            pub const ALL: [Binary; [$($bn),*].len()] = [$(Binary::$b),*];

            /// The op's word in the text form.
            pub fn name(self) -> &'static str {
                match self { $( Binary::$b => $bn, )* }
            }

            /// The host function compiled code calls for this op, if it is computed by one.
            pub fn host(self) -> Option<HostFn<BinaryFn>> {
                match self {
                    $( Binary::$b => {
                        op_table!(@host binary BinaryFn $(, $bf)?)
                    } )*
                }
            }
        }

        /// Elementwise comparisons of two f64 arguments, giving a bool mask.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Compare { $( $(#[$cd])* $c, )* }

        impl Compare {
            /// Every comparison, in table order.
            pub const ALL: [Compare; [$($cn),*].len()] = [$(Compare::$c),*];

            /// The op's word in the text form.
            pub fn name(self) -> &'static str {
                match self { $( Compare::$c => $cn, )* }
            }
        }

        $(#[$opdoc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Op {
            /// A constant of type `ty` (stored here because a splat does not determine its
            /// shape).
            Const { ty: Type, value: Literal },
            Unary(Unary),
            Binary(Binary),
            Compare(Compare),
            $( $(#[$od])* $o $({ $( $field: $fty ),* })?, )*
        }

        /// The name of an op without its attributes: one entry per word of the text form.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Opcode {
            Const,
            Unary(Unary),
            Binary(Binary),
            Compare(Compare),
            $( $o, )*
        }

        impl Opcode {
            /// Every op of the IR, once, in table order.
            pub const ALL: [Opcode; 1 + [$($un,)* $($bn,)* $($cn,)* $($on),*].len()] = [
                Opcode::Const,
                $( Opcode::Unary(Unary::$u), )*
                $( Opcode::Binary(Binary::$b), )*
                $( Opcode::Compare(Compare::$c), )*
                $( Opcode::$o, )*
            ];

            /// The op's word in the text form.
            pub fn name(self) -> &'static str {
                match self {
                    Opcode::Const => "const",
                    Opcode::Unary(u) => u.name(),
                    Opcode::Binary(b) => b.name(),
                    Opcode::Compare(c) => c.name(),
                    $( Opcode::$o => $on, )*
                }
            }

            /// How many operands the op takes.
            pub fn arity(self) -> Arity {
                match self {
                    Opcode::Const => Arity::Exactly(0),
                    Opcode::Unary(_) => Arity::Exactly(1),
                    Opcode::Binary(_) | Opcode::Compare(_) => Arity::Exactly(2),
                    $( Opcode::$o => $arity, )*
                }
            }

            /// The names of the op's attributes, in the order the reader checks them.
            pub fn attribute_names(self) -> &'static [&'static str] {
                match self {
                    Opcode::Const | Opcode::Unary(_) | Opcode::Binary(_) | Opcode::Compare(_) => {
                        &[]
                    }
                    $( Opcode::$o => &[$($(stringify!($field)),*)?], )*
                }
            }
        }

        impl Op {
            /// The op's name without its attributes.
            pub fn opcode(&self) -> Opcode {
                match self {
                    Op::Const { .. } => Opcode::Const,
                    Op::Unary(u) => Opcode::Unary(*u),
                    Op::Binary(b) => Opcode::Binary(*b),
                    Op::Compare(c) => Opcode::Compare(*c),
                    $( Op::$o { .. } => Opcode::$o, )*
                }
            }

            /// The attributes the writer prints, by name (a `false` flag is not printed).
            pub fn attributes(&self) -> Vec<(&'static str, Attr)> {
                match self {
                    Op::Const { .. } | Op::Unary(_) | Op::Binary(_) | Op::Compare(_) => vec![],
                    $( Op::$o $({ $($field),* })? => {
                        #[allow(unused_mut)]
                        let mut out = Vec::new();
                        $($( if let Some(a) = AttrType::to_attr($field) {
                            out.push((stringify!($field), a));
                        } )*)?
                        out
                    } )*
                }
            }

            /// The op `code` with the attributes `get` gives by name, or the first attribute
            /// that is missing or of the wrong kind. `None` for `const`, which takes a literal.
            pub fn from_attributes<'a>(
                code: Opcode,
                get: impl Fn(&str) -> Option<&'a Attr>,
            ) -> Result<Option<Op>, AttrError> {
                Ok(Some(match code {
                    Opcode::Const => return Ok(None),
                    Opcode::Unary(u) => Op::Unary(u),
                    Opcode::Binary(b) => Op::Binary(b),
                    Opcode::Compare(c) => Op::Compare(c),
                    $( Opcode::$o => Op::$o $({ $(
                        $field: AttrType::from_attr(stringify!($field), get(stringify!($field)))?,
                    )* })?, )*
                }))
            }
        }
    };
}

pub(crate) use op_table;
