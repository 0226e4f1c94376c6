//! Text forms of setting values, shared by the config file (serde), the command line
//! (clap) and `synack gen`: one `FromStr` and one `Display` per type, so that a value has
//! one spelling everywhere.
//!
//! - [`Named`]: an enum-valued setting (`xdp.mode`, a listener's mode, …), declared with
//!   `named_enum!`, which writes its names once and derives `FromStr`, `Display` and the
//!   serde forms from them.
//! - `serde_via_str!`: serde through `FromStr`/`Display` for a type with a richer text
//!   form (`ops.capture_mode`'s `sample:N`, `steering.rss_key`'s hex key).
//! - [`parse_hex`] / [`to_hex`]: fixed-length byte strings (cookie secret, RSS key).
//!
//! A bottom layer like `counters`: it imports nothing of the crate.

#![forbid(unsafe_code)]

/// An enum-valued setting: every value has one name, used in TOML, on the command line
/// and in logs.
pub trait Named: Copy + Eq + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The names of [`Named::ALL`], in the same order.
    const NAMES: &'static [&'static str];
    /// What a value is, for error messages: "an XDP mode".
    const WHAT: &'static str;

    /// The value's name.
    fn name(self) -> &'static str;
}

/// Parse the name of a [`Named`] value (surrounding spaces allowed). The error says what
/// was given and what it is not; the caller adds the allowed names and an example.
pub fn parse_named<T: Named>(s: &str) -> Result<T, String> {
    let s = s.trim();
    T::ALL
        .iter()
        .copied()
        .find(|v| v.name() == s)
        .ok_or_else(|| format!("{s:?} is not {}", T::WHAT))
}

/// Names joined for a sentence: `a`, `a or b`, `a, b or c`.
pub fn alternatives(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Declare an enum whose values are named settings: derives [`Named`], `FromStr`,
/// `Display`, `Serialize` and `Deserialize` from one list of names.
///
/// ```text
/// named_enum! {
///     /// Docs.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
///     pub enum Policy: "a policy" { #[default] Rst = "rst", Drop = "drop" }
/// }
/// ```
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $T:ident : $what:literal {
            $( $(#[$vmeta:meta])* $V:ident = $name:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $T { $( $(#[$vmeta])* $V, )+ }

        impl $crate::forms::Named for $T {
            const ALL: &'static [Self] = &[$($T::$V),+];
            const NAMES: &'static [&'static str] = &[$($name),+];
            const WHAT: &'static str = $what;
            fn name(self) -> &'static str {
                match self { $($T::$V => $name,)+ }
            }
        }

        impl ::core::str::FromStr for $T {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $crate::forms::parse_named(s)
            }
        }

        impl ::core::fmt::Display for $T {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str($crate::forms::Named::name(*self))
            }
        }

        $crate::forms::serde_via_str!($T);
    };
}
pub(crate) use named_enum;

/// serde for a type through its `FromStr` (errors become the deserializer's custom error,
/// so a config file gets the same message as a flag) and its `Display`.
macro_rules! serde_via_str {
    ($T:ty) => {
        impl ::serde::Serialize for $T {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $T {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_via_str;

/// Parse exactly `N` bytes of hex. With `colons`, bytes may also be written as
/// colon-separated pairs (`6d:5a:...`, as `ethtool -x` prints).
pub fn parse_hex<const N: usize>(s: &str, colons: bool) -> Result<[u8; N], String> {
    let s = s.trim();
    let digits: String = if colons && s.contains(':') {
        let groups: Vec<&str> = s.split(':').collect();
        if groups.len() != N || groups.iter().any(|g| g.len() != 2) {
            return Err(format!(
                "has {} colon-separated groups, not {N} two-digit bytes",
                groups.len()
            ));
        }
        groups.concat()
    } else {
        s.to_owned()
    };
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("contains {c:?}, which is not a hex digit"));
    }
    if digits.len() != 2 * N {
        return Err(format!("has {} hex digits, not {}", digits.len(), 2 * N));
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = digits.get(2 * i..2 * i + 2).unwrap_or("00");
        *byte = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Lower-case hex digits of `bytes`, two per byte.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    named_enum! {
        /// A test enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Colour: "a colour" { Red = "red", DeepBlue = "deep-blue" }
    }

    #[test]
    fn one_name_per_value_in_every_direction() {
        assert_eq!(Colour::NAMES, ["red", "deep-blue"]);
        assert_eq!(" deep-blue ".parse::<Colour>(), Ok(Colour::DeepBlue));
        assert_eq!(Colour::Red.to_string(), "red");
        assert_eq!(
            "blue".parse::<Colour>().unwrap_err(),
            "\"blue\" is not a colour"
        );
        let v: toml::Value = toml::Value::try_from(Colour::DeepBlue).unwrap();
        assert_eq!(v.as_str(), Some("deep-blue"));
        let back: Colour = v.try_into().unwrap();
        assert_eq!(back, Colour::DeepBlue);
        assert_eq!(alternatives(Colour::NAMES), "red or deep-blue");
        assert_eq!(alternatives(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn hex_of_fixed_length_with_or_without_colons() {
        assert_eq!(parse_hex::<2>("6d5A", false), Ok([0x6d, 0x5a]));
        assert_eq!(parse_hex::<2>("6d:5a", true), Ok([0x6d, 0x5a]));
        assert!(parse_hex::<2>("6d:5a", false).is_err());
        assert!(parse_hex::<2>("6d5", false).is_err());
        assert_eq!(to_hex(&[0, 0xab]), "00ab");
    }
}
