//! `NAME=EXPR` derivations: new columns from arithmetic on existing ones, so that a table from
//! elsewhere can be fitted as is (e.g. Chinchilla's tokens = FLOP / (6·N)).
//!
//! Grammar: `+ - * / ^`, parentheses, numbers, `log(…)`, `exp(…)`, `sqrt(…)`, and column
//! names, either bare (`[A-Za-z_][A-Za-z0-9_]*`) or in backticks (`` `Model Size` ``).
use crate::error::{Error, Result};

/// A parsed `NAME=EXPR`.
#[derive(Clone, Debug, PartialEq)]
pub struct Derivation {
    /// Name of the new column.
    pub name: String,
    /// The expression.
    pub expr: Expr,
}

/// An arithmetic expression over columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant.
    Num(f64),
    /// A column.
    Col(String),
    /// −e.
    Neg(Box<Expr>),
    /// A binary operation: one of + − * / ^.
    Bin(char, Box<Expr>, Box<Expr>),
    /// log, exp or sqrt.
    Call(String, Box<Expr>),
}

impl Derivation {
    /// Parses `NAME=EXPR`; the error names the flag and the position.
    pub fn parse(spec: &str) -> Result<Derivation> {
        let bad = |m: String| Error::input(super::options::names::DERIVE, format!("'{spec}': {m}"));
        let (name, expr) = spec.split_once('=').ok_or_else(|| bad("expected NAME=EXPR".into()))?;
        let name = name.trim().trim_matches('`').to_string();
        if name.is_empty() {
            return Err(bad("the new column needs a name".into()));
        }
        let mut p = Parser { chars: expr.chars().collect(), pos: 0 };
        let e = p.sum().map_err(bad)?;
        p.skip_ws();
        if p.pos < p.chars.len() {
            return Err(bad(format!("unexpected '{}' at position {}", p.chars[p.pos], p.pos)));
        }
        Ok(Derivation { name, expr: e })
    }

    /// The columns the expression reads.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_columns(&self.expr, &mut out);
        out
    }

    /// Evaluates row by row; `column` supplies each referenced column's values.
    pub fn eval(&self, column: &dyn Fn(&str) -> Result<Vec<f64>>) -> Result<Vec<f64>> {
        eval(&self.expr, column)
    }
}

fn collect_columns(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Num(_) => {}
        Expr::Col(c) => {
            if !out.contains(c) {
                out.push(c.clone())
            }
        }
        Expr::Neg(a) | Expr::Call(_, a) => collect_columns(a, out),
        Expr::Bin(_, a, b) => {
            collect_columns(a, out);
            collect_columns(b, out);
        }
    }
}

/// Values of an expression: a scalar or a column.
enum Val {
    Scalar(f64),
    Column(Vec<f64>),
}

fn eval(e: &Expr, column: &dyn Fn(&str) -> Result<Vec<f64>>) -> Result<Vec<f64>> {
    match eval_val(e, column)? {
        Val::Column(v) => Ok(v),
        Val::Scalar(_) => Err(Error::input(super::options::names::DERIVE, "the expression uses no column")),
    }
}

fn eval_val(e: &Expr, column: &dyn Fn(&str) -> Result<Vec<f64>>) -> Result<Val> {
    Ok(match e {
        Expr::Num(v) => Val::Scalar(*v),
        Expr::Col(c) => Val::Column(column(c)?),
        Expr::Neg(a) => map(eval_val(a, column)?, |v| -v),
        Expr::Call(f, a) => {
            let f: fn(f64) -> f64 = match f.as_str() {
                "log" => f64::ln,
                "exp" => f64::exp,
                _ => f64::sqrt,
            };
            map(eval_val(a, column)?, f)
        }
        Expr::Bin(op, a, b) => {
            let op = *op;
            let apply = move |x: f64, y: f64| match op {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                '/' => x / y,
                _ => x.powf(y),
            };
            match (eval_val(a, column)?, eval_val(b, column)?) {
                (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(apply(x, y)),
                (Val::Column(x), Val::Scalar(y)) => Val::Column(x.into_iter().map(|x| apply(x, y)).collect()),
                (Val::Scalar(x), Val::Column(y)) => Val::Column(y.into_iter().map(|y| apply(x, y)).collect()),
                (Val::Column(x), Val::Column(y)) => Val::Column(x.into_iter().zip(y).map(|(x, y)| apply(x, y)).collect()),
            }
        }
    })
}

fn map(v: Val, f: impl Fn(f64) -> f64) -> Val {
    match v {
        Val::Scalar(x) => Val::Scalar(f(x)),
        Val::Column(c) => Val::Column(c.into_iter().map(f).collect()),
    }
}

/// Recursive descent: sum → product → unary → power → atom.
struct Parser {
    chars: Vec<char>,
    pos: usize,
}

type Parsed = std::result::Result<Expr, String>;

impl Parser {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn sum(&mut self) -> Parsed {
        let mut left = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.pos += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Parsed {
        let mut left = self.unary()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.pos += 1;
            left = Expr::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    /// A leading minus binds looser than `^`: -t^2 is -(t^2).
    fn unary(&mut self) -> Parsed {
        if self.peek() == Some('-') {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.power()
    }

    fn power(&mut self) -> Parsed {
        let base = self.atom()?;
        if self.peek() == Some('^') {
            self.pos += 1;
            // Right-associative, as in mathematics; the exponent may carry a sign.
            return Ok(Expr::Bin('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Parsed {
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let e = self.sum()?;
                self.expect(')')?;
                Ok(e)
            }
            Some('`') => {
                self.pos += 1;
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(|&c| c != '`') {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                self.expect('`')?;
                Ok(Expr::Col(name))
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' => self.name_or_call(),
            Some(c) => Err(format!("unexpected '{c}' at position {}", self.pos)),
            None => Err("the expression ends too early".into()),
        }
    }

    fn number(&mut self) -> Parsed {
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit() || *c == '.') {
            self.pos += 1;
        }
        // Exponent part: 1e9, 2.5E-3.
        if self.chars.get(self.pos).is_some_and(|c| *c == 'e' || *c == 'E') {
            let save = self.pos;
            self.pos += 1;
            if self.chars.get(self.pos).is_some_and(|c| *c == '+' || *c == '-') {
                self.pos += 1;
            }
            if self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                while self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            } else {
                self.pos = save;
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse().map(Expr::Num).map_err(|_| format!("bad number '{text}'"))
    }

    fn name_or_call(&mut self) -> Parsed {
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|c| c.is_alphanumeric() || *c == '_') {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if self.peek() == Some('(') && matches!(name.as_str(), "log" | "exp" | "sqrt") {
            self.pos += 1;
            let arg = self.sum()?;
            self.expect(')')?;
            return Ok(Expr::Call(name, Box::new(arg)));
        }
        Ok(Expr::Col(name))
    }

    fn expect(&mut self, c: char) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{c}' at position {}", self.pos))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(name: &str) -> Result<Vec<f64>> {
        match name {
            "Training FLOP" => Ok(vec![6e9, 12e9]),
            "Model Size" => Ok(vec![1e3, 2e3]),
            "t" => Ok(vec![2.0, 3.0]),
            _ => Err(Error::input(format!("column '{name}'"), "missing")),
        }
    }

    #[test]
    fn chinchilla_tokens_from_flop_and_size() {
        let d = Derivation::parse("D = `Training FLOP` / (6 * `Model Size`)").unwrap();
        assert_eq!(d.name, "D");
        assert_eq!(d.columns(), vec!["Training FLOP".to_string(), "Model Size".to_string()]);
        assert_eq!(d.eval(&columns).unwrap(), vec![1e6, 1e6]);
    }

    #[test]
    fn precedence_powers_and_functions() {
        let d = Derivation::parse("z=-t^2*3+log(exp(t))+1e1").unwrap();
        let v = d.eval(&columns).unwrap();
        assert!((v[0] - (-12.0 + 2.0 + 10.0)).abs() < 1e-12 && (v[1] - (-27.0 + 3.0 + 10.0)).abs() < 1e-12);
    }

    #[test]
    fn malformed_and_unknown_are_input_errors() {
        assert_eq!(Derivation::parse("noequals").unwrap_err().exit_code(), 2);
        assert_eq!(Derivation::parse("a=(t+").unwrap_err().exit_code(), 2);
        assert_eq!(Derivation::parse("a=t)").unwrap_err().exit_code(), 2);
        let d = Derivation::parse("a=missing*2").unwrap();
        assert_eq!(d.eval(&columns).unwrap_err().exit_code(), 2);
        assert_eq!(Derivation::parse("a=2*3").unwrap().eval(&columns).unwrap_err().exit_code(), 2);
    }
}
