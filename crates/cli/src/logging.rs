//! The process's log: text for people (the default) or JSON lines for log pipelines
//! (`SCIMITAR_LOG_FORMAT=json`), filtered by `SCIMITAR_LOG`, always on stderr.
//!
//! Whatever a call site logs, one event is one line: the JSON formatter escapes every control
//! character itself, and the text format writes through [`EscapingWriter`], which escapes
//! every control character of an event but the newline that ends it. Clients choose much of
//! what is logged (statement text, names, paths), and a newline in any of it must not be able
//! to forge a line.

use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The environment variable that picks the log format.
pub const FORMAT_VARIABLE: &str = "SCIMITAR_LOG_FORMAT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The format `SCIMITAR_LOG_FORMAT` names: `text` (or unset), or `json`.
    pub fn from_environment() -> Result<LogFormat, String> {
        match std::env::var(FORMAT_VARIABLE) {
            Err(std::env::VarError::NotPresent) => Ok(LogFormat::Text),
            Ok(value) if value.trim().eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Ok(value) if value.trim().eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Ok(value) => Err(format!(
                "{FORMAT_VARIABLE}={value:?} is not a log format: use text or json"
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                "{FORMAT_VARIABLE} is not valid text: use text or json"
            )),
        }
    }
}

/// The format [`init`] installed.
static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Whether the log is JSON lines: then nothing else may be written to stderr, which would not
/// parse.
pub fn is_json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// Installs the process's subscriber.
pub fn init() -> Result<(), String> {
    let format = LogFormat::from_environment()?;
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_env("SCIMITAR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        // No colour codes: they are control characters, which the writer escapes.
        LogFormat::Text => builder
            .with_ansi(false)
            .with_writer(EscapingWriter)
            .try_init(),
        // Fields at the top level of each line, beside `timestamp`, `level` and `message`, as
        // log pipelines index them; the request's span (with its request id) under `span`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .try_init(),
    }
    .map_err(|error| format!("cannot start logging: {error}"))
}

/// Makes writers to stderr that escape control characters ([`escape_line`]).
struct EscapingWriter;

impl<'a> MakeWriter<'a> for EscapingWriter {
    type Writer = EscapingLine;

    fn make_writer(&'a self) -> EscapingLine {
        EscapingLine
    }
}

/// One event's text, escaped and written to stderr whole. The formatter hands an event to
/// its writer in one `write_all` of the whole line.
struct EscapingLine;

impl Write for EscapingLine {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buffer);
        std::io::stderr()
            .lock()
            .write_all(escape_line(&text).as_bytes())?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `text` with every control character (and the Unicode line and paragraph separators)
/// written as its Rust escape (`\n`, `\u{1b}`), except one newline at the very end.
pub fn escape_line(text: &str) -> String {
    let (body, ending) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (text, ""),
    };
    let mut escaped = String::with_capacity(text.len());
    for character in body.chars() {
        if character.is_control() || matches!(character, '\u{2028}' | '\u{2029}') {
            escaped.extend(character.escape_debug());
        } else {
            escaped.push(character);
        }
    }
    escaped.push_str(ending);
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_line;

    #[test]
    fn a_line_keeps_its_final_newline_and_loses_every_other_control_character() {
        assert_eq!(
            escape_line("statement failed: `a\nINFO forged`\r\u{1b}[31m\t\u{2028}\n"),
            "statement failed: `a\\nINFO forged`\\r\\u{1b}[31m\\t\\u{2028}\n"
        );
        assert_eq!(escape_line("plain"), "plain");
        assert_eq!(escape_line("two\n\n"), "two\\n\n");
    }
}
