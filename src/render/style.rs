//! Colour only on a terminal, never when NO_COLOR is set (no-color.org).

use std::io::IsTerminal;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when standard output is a terminal and NO_COLOR is unset.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub(crate) fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

/// `text` in the ANSI colour `code` when `color`, else as it is.
pub(crate) fn paint(color: bool, code: &str, text: &str) -> String {
    // The text may carry names from logs: its own escapes are made visible
    // before ours go around it.
    let text = super::escape::visible(text);
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.into_owned()
    }
}
