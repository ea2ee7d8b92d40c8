//! The size limits every parser enforces, so that a hostile query cannot exhaust the server.

/// The longest input, in bytes, that any parser accepts. Real filters are a few hundred bytes;
/// 64 KiB leaves generous room for long `or` chains of group member ids.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// The deepest nesting accepted. Every `(`, every `not` and every value path `attr[...]` counts as
/// one level. The parser recurses once per level, so this bound is also what keeps adversarial
/// input such as a megabyte of `(` from overflowing the stack.
pub const MAX_NESTING_DEPTH: usize = 64;

/// The most comparison and presence tests (`attr op value`, `attr pr`) one input may contain;
/// past it a filter is `invalidFilter`. Evaluation cost grows with this number for every
/// resource the filter is matched against. A chain `a or b or ...` parses to a tree as deep as
/// it is long, which the resolver and evaluator walk recursively, so this also bounds their
/// stack. Storage writes such a chain as SQL nested by the logarithm of its length (SQLite
/// refuses expressions nested over 1,000 deep), and binds at most two parameters per test,
/// well under either database's limit on parameters.
pub const MAX_COMPARISONS: usize = 1000;
