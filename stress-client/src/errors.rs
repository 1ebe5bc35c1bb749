//! Errors grouped by gRPC status code and message, with counts. A server can
//! put anything in a message (an op id, a timestamp), so the distinct
//! messages kept are bounded: past the bound, further ones are counted under
//! their code with [`OTHER_MESSAGES`] as message. The tally is a short list
//! scanned linearly; it allocates only for a new message, at most
//! [`ERROR_MESSAGES_MAX`] times per worker.

use serde::Serialize;

/// Distinct (code, message) pairs kept per worker and in the report.
pub const ERROR_MESSAGES_MAX: usize = 20;
/// Messages longer than this are cut (on a character boundary).
pub const ERROR_MESSAGE_CHARS_MAX: usize = 200;
/// The message under which errors past the bound are counted.
pub const OTHER_MESSAGES: &str = "(other messages)";

/// One group of errors (`errors[]` in the JSON report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorGroup {
    /// The canonical status name, e.g. `DEADLINE_EXCEEDED`.
    pub code: String,
    pub message: String,
    pub count: u64,
}

/// Errors by (status code, message).
#[derive(Debug, Clone, Default)]
pub struct ErrorTally {
    groups: Vec<(i32, String, u64)>,
}

impl ErrorTally {
    /// Counts `n` errors with `code` and `message`.
    pub fn add(&mut self, code: i32, message: &str, n: u64) {
        let message = clip(message);
        if let Some(g) = self.groups.iter_mut().find(|g| g.0 == code && g.1 == message) {
            g.2 += n;
            return;
        }
        if self.groups.len() < ERROR_MESSAGES_MAX {
            self.groups.push((code, message.to_owned(), n));
            return;
        }
        match self
            .groups
            .iter_mut()
            .find(|g| g.0 == code && g.1 == OTHER_MESSAGES)
        {
            Some(g) => g.2 += n,
            // The bound may be passed by one group per code (17 at most).
            None => self.groups.push((code, OTHER_MESSAGES.to_owned(), n)),
        }
    }

    /// Adds another tally (another worker's).
    pub fn merge(&mut self, other: &ErrorTally) {
        for (code, message, n) in &other.groups {
            self.add(*code, message, *n);
        }
    }

    /// The groups, most frequent first, codes named by `name`.
    pub fn groups(&self, name: impl Fn(i32) -> String) -> Vec<ErrorGroup> {
        let mut out: Vec<ErrorGroup> = self
            .groups
            .iter()
            .map(|(code, message, count)| ErrorGroup {
                code: name(*code),
                message: message.clone(),
                count: *count,
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
        out
    }
}

fn clip(message: &str) -> &str {
    match message.char_indices().nth(ERROR_MESSAGE_CHARS_MAX) {
        Some((at, _)) => &message[..at],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_code_and_message_and_stays_bounded() {
        let mut t = ErrorTally::default();
        t.add(4, "deadline", 1);
        t.add(4, "deadline", 1);
        t.add(14, "deadline", 1);
        for i in 0..100 {
            t.add(13, &format!("op {i} failed"), 1);
        }
        let groups = t.groups(|c| c.to_string());
        assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), 103);
        assert!(groups.len() <= ERROR_MESSAGES_MAX + 1, "{groups:?}");
        assert_eq!(groups[0].message, OTHER_MESSAGES);
        assert!(groups.contains(&ErrorGroup {
            code: "4".into(),
            message: "deadline".into(),
            count: 2
        }));
        let mut merged = ErrorTally::default();
        merged.merge(&t);
        merged.merge(&t);
        assert_eq!(
            merged
                .groups(|c| c.to_string())
                .iter()
                .map(|g| g.count)
                .sum::<u64>(),
            206
        );
    }

    #[test]
    fn long_messages_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(ERROR_MESSAGE_CHARS_MAX + 5);
        assert_eq!(clip(&long).chars().count(), ERROR_MESSAGE_CHARS_MAX);
    }
}
