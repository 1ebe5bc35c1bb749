//! The conformance report: a table for people (id, pass/FAIL/skip, the
//! description, then each failure's exchange) and JSON for machines:
//! `{"target", "passed", "failed", "skipped", "elapsed_ms", "checks": [{"id",
//! "description", "passed", "skipped", "detail"}]}`. `detail` is `null` for
//! a check that passed, the exchange that failed for a failure, and why for
//! a skipped check (which counts as neither passed nor failed: `"passed":
//! false, "skipped": true`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::ctx::Stop;
use crate::run::Exit;

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub id: &'static str,
    pub description: &'static str,
    pub passed: bool,
    pub skipped: bool,
    /// `None` when passed; the failed exchange, or why it was skipped.
    pub detail: Option<String>,
    pub elapsed_ms: u64,
}

impl CheckReport {
    /// The report of check `id` that ended with `outcome` after `elapsed`.
    pub fn new(
        id: &'static str,
        description: &'static str,
        outcome: Result<(), Stop>,
        elapsed: Duration,
    ) -> CheckReport {
        let (passed, skipped, detail) = match outcome {
            Ok(()) => (true, false, None),
            Err(Stop::Fail(detail)) => (false, false, Some(detail)),
            Err(Stop::Skip(why)) => (false, true, Some(why)),
        };
        CheckReport {
            id,
            description,
            passed,
            skipped,
            detail,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn failed(&self) -> bool {
        !self.passed && !self.skipped
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub elapsed_ms: u64,
    pub checks: Vec<CheckReport>,
}

impl Report {
    /// The report of `checks` run against `target` in `elapsed`.
    pub fn new(target: &str, checks: Vec<CheckReport>, elapsed: Duration) -> Report {
        Report {
            target: target.to_owned(),
            passed: checks.iter().filter(|c| c.passed).count(),
            failed: checks.iter().filter(|c| c.failed()).count(),
            skipped: checks.iter().filter(|c| c.skipped).count(),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            checks,
        }
    }

    /// 0 when nothing failed, 1 when a check failed.
    pub fn exit(&self) -> Exit {
        if self.failed == 0 {
            Exit::Passed
        } else {
            Exit::Violation
        }
    }

    /// The table for people.
    pub fn table(&self) -> String {
        let width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        let mut out = format!("conformance of {}\n", self.target);
        for c in &self.checks {
            let mark = match (c.passed, c.skipped) {
                (true, _) => "pass",
                (_, true) => "skip",
                _ => "FAIL",
            };
            let _ = writeln!(out, "  {:width$}  {mark}  {}", c.id, c.description);
        }
        for c in self.checks.iter().filter(|c| c.failed()) {
            let _ = writeln!(out, "\nFAIL {}: {}", c.id, c.detail.as_deref().unwrap_or(""));
        }
        let _ = writeln!(
            out,
            "\n{} passed, {} failed, {} skipped of {} checks in {:.1} s: {}",
            self.passed,
            self.failed,
            self.skipped,
            self.checks.len(),
            self.elapsed_ms as f64 / 1000.0,
            if self.failed == 0 {
                "CONFORMS"
            } else {
                "DOES NOT CONFORM"
            }
        );
        out
    }

    /// Writes the JSON report to `path`.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_marks_and_exit_follow_the_checks() {
        let ms = Duration::from_millis(3);
        let checks = vec![
            CheckReport::new("a-one", "first", Ok(()), ms),
            CheckReport::new("a-two", "second", Err(Stop::Fail("sent X; got Y".into())), ms),
            CheckReport::new("b-three", "third", Err(Stop::Skip("needs tokens".into())), ms),
        ];
        let report = Report::new("http://x", checks, ms);
        assert_eq!((report.passed, report.failed, report.skipped), (1, 1, 1));
        assert_eq!(report.exit(), Exit::Violation);
        let table = report.table();
        assert!(table.contains("a-two    FAIL  second"), "{table}");
        assert!(table.contains("FAIL a-two: sent X; got Y"), "{table}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][0]["detail"], serde_json::Value::Null);
        assert_eq!(json["checks"][2]["skipped"], true);
        let passing = Report::new("http://x", vec![CheckReport::new("a", "d", Ok(()), ms)], ms);
        assert_eq!(passing.exit(), Exit::Passed);
    }
}
