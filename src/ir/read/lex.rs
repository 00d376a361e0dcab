//! The reader's lexer: tokens, white space and comments, and the primitive readers built on
//! them (punctuation, names, integers, bracketed lists) that the grammar in `super` uses.

use super::{PResult, Parser};
use crate::ir::types::Dims;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Tok<'a> {
    Ident(&'a str),
    Global(&'a str),
    Number(&'a str),
    Punct(u8),
    Arrow,
    Eof,
}

impl fmt::Display for Tok<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "'{s}'"),
            Tok::Global(s) => write!(f, "'@{s}'"),
            Tok::Number(s) => write!(f, "number '{s}'"),
            Tok::Punct(c) => write!(f, "'{}'", *c as char),
            Tok::Arrow => write!(f, "'->'"),
            Tok::Eof => write!(f, "end of file"),
        }
    }
}

/// The message for an integer beyond `u32::MAX`, the largest dimension, axis or index.
fn too_large(what: &str, v: impl fmt::Display) -> String {
    format!("{what} {v} is too large (at most {})", u32::MAX)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

impl<'a> Parser<'a> {
    pub(super) fn skip_space(&mut self) {
        let b = self.text.as_bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b';' => {
                    while self.pos < b.len() && b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// The next token and its byte offset, without consuming it.
    pub(super) fn peek(&mut self) -> PResult<(Tok<'a>, usize)> {
        self.skip_space();
        let save = (self.pos, self.line);
        let t = self.lex();
        self.pos = save.0;
        self.line = save.1;
        t.map(|t| (t, save.0))
    }

    pub(super) fn next(&mut self) -> PResult<(Tok<'a>, usize)> {
        self.skip_space();
        let start = self.pos;
        self.lex().map(|t| (t, start))
    }

    pub(super) fn lex(&mut self) -> PResult<Tok<'a>> {
        let text = self.text;
        let b = text.as_bytes();
        let start = self.pos;
        let Some(&c) = b.get(start) else {
            return Ok(Tok::Eof);
        };
        let take_while = |mut i: usize, f: fn(u8) -> bool| {
            while i < b.len() && f(b[i]) {
                i += 1;
            }
            i
        };
        if is_ident_start(c) {
            let end = take_while(start + 1, is_ident_char);
            self.pos = end;
            return Ok(Tok::Ident(&text[start..end]));
        }
        if c == b'@' {
            let end = take_while(start + 1, is_ident_char);
            if end == start + 1 || !is_ident_start(b[start + 1]) {
                return self.err(start, "expected a function name after '@'");
            }
            self.pos = end;
            return Ok(Tok::Global(&text[start + 1..end]));
        }
        let next = b.get(start + 1).copied();
        if c == b'-' && next == Some(b'>') {
            self.pos = start + 2;
            return Ok(Tok::Arrow);
        }
        let signed_digit =
            (c == b'-' || c == b'+') && next.is_some_and(|n| n.is_ascii_digit() || n == b'.');
        if c.is_ascii_digit()
            || signed_digit
            || (c == b'.' && next.is_some_and(|n| n.is_ascii_digit()))
        {
            let mut i = start + 1;
            while i < b.len() {
                let d = b[i];
                let exp_sign = (d == b'-' || d == b'+') && matches!(b[i - 1], b'e' | b'E');
                if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            self.pos = i;
            return Ok(Tok::Number(&text[start..i]));
        }
        if b"(){}[],:=~-".contains(&c) {
            self.pos = start + 1;
            return Ok(Tok::Punct(c));
        }
        let ch = text[start..].chars().next().unwrap_or('?');
        self.err(
            start,
            format!("unexpected character '{}'", ch.escape_debug()),
        )
    }

    pub(super) fn expect_punct(&mut self, c: u8, context: &str) -> PResult<usize> {
        match self.next()? {
            (Tok::Punct(p), at) if p == c => Ok(at),
            (t, at) => self.err(at, format!("expected '{}' {context}, found {t}", c as char)),
        }
    }

    pub(super) fn eat_punct(&mut self, c: u8) -> PResult<bool> {
        if let (Tok::Punct(p), _) = self.peek()? {
            if p == c {
                self.next()?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// After an operand ending at `end` without a ',': another operand on the same line (a name
    /// not starting an instruction `name:`, or a number) means the ',' is missing.
    pub(super) fn no_missing_comma(&mut self, opname: &str, end: usize) -> PResult<()> {
        let (t, at) = self.peek()?;
        if self.text[end..at].contains('\n') {
            return Ok(());
        }
        let missing = match t {
            Tok::Number(_) => true,
            Tok::Ident(n) => n != "return" && self.peek_second()? != Tok::Punct(b':'),
            Tok::Global(_) | Tok::Punct(_) | Tok::Arrow | Tok::Eof => false,
        };
        if missing {
            return self.err(
                at,
                format!("expected ',' between the operands of {opname}, found {t}"),
            );
        }
        Ok(())
    }

    /// The token after the next one, without consuming either.
    pub(super) fn peek_second(&mut self) -> PResult<Tok<'a>> {
        let save = (self.pos, self.line);
        let second = self.next().and_then(|_| self.next());
        (self.pos, self.line) = save;
        second.map(|(t, _)| t)
    }

    pub(super) fn expect_ident(&mut self, context: &str) -> PResult<(&'a str, usize)> {
        match self.next()? {
            (Tok::Ident(s), at) => Ok((s, at)),
            (t, at) => self.err(at, format!("expected {context}, found {t}")),
        }
    }

    /// A non-negative integer of at most `u32::MAX`.
    pub(super) fn integer(&mut self, what: &str) -> PResult<usize> {
        let (v, at) = self.wide_integer(what)?;
        if v > u32::MAX as u64 {
            return self.err(at, too_large(what, v));
        }
        Ok(v as usize)
    }

    /// A non-negative integer of at most `u64::MAX`, and its offset: the dimensions of a type,
    /// whose limits `Type::try_new` checks.
    pub(super) fn wide_integer(&mut self, what: &str) -> PResult<(u64, usize)> {
        match self.next()? {
            (Tok::Number(s), at) => {
                if !s.bytes().all(|c| c.is_ascii_digit()) {
                    return self.err(
                        at,
                        format!("expected a non-negative integer for {what}, found '{s}'"),
                    );
                }
                match s.parse::<u64>() {
                    Ok(v) => Ok((v, at)),
                    Err(_) => self.err(at, too_large(what, s)),
                }
            }
            (t, at) => self.err(at, format!("expected an integer for {what}, found {t}")),
        }
    }

    /// After a list entry: `true` at a ',', `false` at `close`; anything else is an error
    /// saying where (`place`: "in the literal", "after a parameter").
    pub(super) fn comma_or(&mut self, close: u8, place: &str) -> PResult<bool> {
        match self.next()? {
            (Tok::Punct(b','), _) => Ok(true),
            (Tok::Punct(c), _) if c == close => Ok(false),
            (t, at) => self.err(
                at,
                format!("expected ',' or '{}' {place}, found {t}", close as char),
            ),
        }
    }

    /// `[INT, ...]`, each entry read by `item`, and the offset of the '['.
    pub(super) fn items<T>(
        &mut self,
        what: &str,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<(Vec<T>, usize)> {
        let open = self.expect_punct(b'[', &format!("to open the {what} list"))?;
        let mut items = Vec::new();
        if !self.eat_punct(b']')? {
            loop {
                items.push(item(self)?);
                if !self.comma_or(b']', &format!("in the {what} list"))? {
                    break;
                }
            }
        }
        Ok((items, open))
    }

    /// `[INT, ...]` as `Dims`.
    pub(super) fn int_list(&mut self, what: &str) -> PResult<Dims> {
        let (items, open) = self.items(what, |p| p.integer(what))?;
        Dims::try_new(&items).or_else(|e| self.err(open, format!("the {what} list: {e}")))
    }
}
