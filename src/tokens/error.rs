//! The token counters' error type: a bad value names the request field it is in (`size`, `fps`,
//! ...) as a typed [`Field`], never a command-line flag, so each front end can write the field
//! its own way (the CLI writes its flags) with [`InputError::render`].
use std::fmt;

/// A field of a count request, a clip or a budget target that a bad value can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The model family's name.
    Family,
    /// The image or frame size.
    Size,
    /// A video's native frame rate (`VideoRequest::fps`, `Clip::fps`).
    Fps,
    /// A video's length in seconds (`VideoRequest::duration_s`, `Clip::duration_s`).
    Duration,
    /// Frames to sample (`VideoRequest::frames`, `BudgetTarget::frames`).
    Frames,
    /// Qwen `min_pixels` (`Knobs::min_pixels`).
    MinPixels,
    /// Qwen `max_pixels` (`Knobs::max_pixels`).
    MaxPixels,
    /// InternVL `max_num` tiles (`Knobs::max_tiles`).
    MaxTiles,
    /// InternVL's thumbnail switch (`Knobs::no_thumbnail`).
    NoThumbnail,
    /// LLaVA-OneVision video pooling (`Knobs::pooling`).
    Pooling,
    /// Oryx compression ratio (`Knobs::compression`).
    Compression,
    /// The token budget L (`BudgetTarget::budget`).
    Budget,
    /// The per-frame target M (`BudgetTarget::tokens_per_frame`).
    TokensPerFrame,
}

impl Field {
    /// The field's name in the library's types, e.g. `duration_s`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Family => "family",
            Field::Size => "size",
            Field::Fps => "fps",
            Field::Duration => "duration_s",
            Field::Frames => "frames",
            Field::MinPixels => "min_pixels",
            Field::MaxPixels => "max_pixels",
            Field::MaxTiles => "max_tiles",
            Field::NoThumbnail => "no_thumbnail",
            Field::Pooling => "pooling",
            Field::Compression => "compression",
            Field::Budget => "budget",
            Field::TokensPerFrame => "tokens_per_frame",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A piece of an error message: plain text, or a mention of another field (so a front end
/// writes that field its own way too).
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// A field, written by the renderer's naming.
    Field(Field),
}

impl From<&str> for Part {
    fn from(text: &str) -> Part {
        Part::Text(text.to_string())
    }
}

impl From<String> for Part {
    fn from(text: String) -> Part {
        Part::Text(text)
    }
}

impl From<Field> for Part {
    fn from(field: Field) -> Part {
        Part::Field(field)
    }
}

/// A bad input value: the field it is in and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    field: Field,
    message: Vec<Part>,
}

impl InputError {
    /// The field the bad value is in.
    pub fn field(&self) -> Field {
        self.field
    }

    /// `"{field}: {message}"` with every field (the culprit and any mentioned) written by `name`.
    pub fn render(&self, name: impl Fn(Field) -> &'static str) -> String {
        let mut out = format!("{}: ", name(self.field));
        for part in &self.message {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(name(*field)),
            }
        }
        out
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Field::name))
    }
}

/// An error of the token counters: bad input, or a disagreement inside the library (a bug).
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A bad value, naming its field.
    Input(InputError),
    /// The budget search and the family's own rule disagree.
    Internal(String),
}

/// The token counters' result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Bad input in `field`, described by one piece of text.
    pub(crate) fn input(field: Field, message: impl Into<Part>) -> Error {
        Error::with_parts(field, vec![message.into()])
    }

    /// Bad input in `field`, described by text that mentions other fields.
    pub(crate) fn with_parts(field: Field, message: Vec<Part>) -> Error {
        Error::Input(InputError { field, message })
    }

    /// An internal failure.
    pub(crate) fn internal(message: impl fmt::Display) -> Error {
        Error::Internal(message.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(e) => e.fmt(f),
            Error::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Input(e) => crate::error::Error::Input(e.to_string()),
            Error::Internal(m) => crate::error::Error::Internal(m),
        }
    }
}
