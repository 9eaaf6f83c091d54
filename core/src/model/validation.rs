//! Validation errors: what is wrong, where (resource and field), and how to fix it.

use super::urn::Urn;
use std::fmt;

/// One problem found while the stack was built, before any API call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// The resource at fault.
    pub urn: Urn,
    /// The input field at fault (`name` for naming problems, `depends_on` for graph problems).
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} field `{}`: {}\n    fix: {}", self.urn.display_short(), self.field, self.problem, self.fix)
    }
}

/// Every problem found in a stack, reported together.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "the stack is invalid ({n} problem{}); nothing was changed:", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Collects the field errors of one resource.
///
/// ```
/// use fabric_core::model::{Checker, Urn};
/// let mut c = Checker::new(Urn::new("s", "aws:ec2:Vpc", "main"));
/// c.require(false, "cidr", "`10.0.0.0/33` is not a CIDR block", "write it as `10.0.0.0/16`");
/// assert_eq!(c.into_errors().len(), 1);
/// ```
pub struct Checker {
    urn: Urn,
    errors: Vec<ValidationError>,
}

impl Checker {
    pub fn new(urn: Urn) -> Self {
        Checker { urn, errors: Vec::new() }
    }

    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    /// Records an error unless `ok`.
    pub fn require(&mut self, ok: bool, field: &str, problem: impl Into<String>, fix: impl Into<String>) {
        if !ok {
            self.error(field, problem, fix);
        }
    }

    /// Records an error unless `value` lies in `range`; the problem is `problem` with its `{}`
    /// written as the value.
    ///
    /// ```
    /// use fabric_core::model::{Checker, Urn};
    /// let mut c = Checker::new(Urn::new("s", "aws:elasticache:ReplicationGroup", "cache"));
    /// c.within("port", 70_000, 1..=65535, "{} is not a TCP port", "use 6379, the default");
    /// assert_eq!(c.into_errors()[0].problem, "70000 is not a TCP port");
    /// ```
    pub fn within<T: PartialOrd + std::fmt::Display>(
        &mut self,
        field: &str,
        value: T,
        range: std::ops::RangeInclusive<T>,
        problem: &str,
        fix: impl Into<String>,
    ) {
        if !range.contains(&value) {
            self.error(field, problem.replacen("{}", &value.to_string(), 1), fix);
        }
    }

    pub fn error(&mut self, field: &str, problem: impl Into<String>, fix: impl Into<String>) {
        self.errors.push(ValidationError {
            urn: self.urn.clone(),
            field: field.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    pub fn into_errors(self) -> Vec<ValidationError> {
        self.errors
    }
}
