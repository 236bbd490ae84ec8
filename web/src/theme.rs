//! Light and dark themes: the page's CSS follows `data-theme` on `<html>`,
//! charts take their colours from here. The choice is kept in localStorage;
//! the first visit follows the system's preference.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

pub struct ChartColors {
    pub background: (u8, u8, u8),
    pub text: (u8, u8, u8),
    pub axis: (u8, u8, u8),
    pub grid: (u8, u8, u8),
}

const KEY: &str = "vigil-theme";

impl Theme {
    pub fn colors(self) -> ChartColors {
        match self {
            Theme::Light => ChartColors {
                background: (0xff, 0xff, 0xff),
                text: (0x3a, 0x42, 0x54),
                axis: (0x9a, 0xa1, 0xb0),
                grid: (0xe6, 0xe8, 0xee),
            },
            Theme::Dark => ChartColors {
                background: (0x18, 0x1b, 0x22),
                text: (0xc8, 0xcd, 0xd8),
                axis: (0x5a, 0x61, 0x70),
                grid: (0x2a, 0x2f, 0x3a),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn other(self) -> Theme {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        }
    }

    /// The saved choice, else the system preference.
    pub fn load() -> Theme {
        let Some(w) = web_sys::window() else {
            return Theme::Light;
        };
        let saved = w
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item(KEY).ok().flatten());
        match saved.as_deref() {
            Some("dark") => Theme::Dark,
            Some("light") => Theme::Light,
            _ => {
                let dark = w
                    .match_media("(prefers-color-scheme: dark)")
                    .ok()
                    .flatten()
                    .is_some_and(|m| m.matches());
                if dark {
                    Theme::Dark
                } else {
                    Theme::Light
                }
            }
        }
    }

    /// Applies the theme to the document and remembers it.
    pub fn apply(self, remember: bool) {
        let Some(w) = web_sys::window() else { return };
        if let Some(el) = w.document().and_then(|d| d.document_element()) {
            let _ = el.set_attribute("data-theme", self.name());
        }
        if remember {
            if let Some(s) = w.local_storage().ok().flatten() {
                let _ = s.set_item(KEY, self.name());
            }
        }
    }
}
