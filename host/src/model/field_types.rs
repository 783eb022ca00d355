//! The type of a custom field: one Vigilo builds in, or one a loaded
//! plugin provides by name.

use super::words::words;

words! {
    /// A field type Vigilo builds in.
    pub enum Builtin ("built-in field type") {
        /// Any text up to 10,000 characters.
        Text = "text",
        /// A number.
        Number = "number",
        /// true or false.
        Boolean = "boolean",
        /// A calendar date, YYYY-MM-DD.
        Date = "date",
        /// One of the field's options.
        Select = "select",
    }
}

/// A custom field's type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Built in.
    Builtin(Builtin),
    /// Provided by a plugin under this name (checked against the loaded
    /// plugins where a field is defined, not here).
    Plugin(String),
}

impl FieldType {
    /// The type named `name`: a built-in one when it is one's name, a
    /// plugin's otherwise.
    pub fn named(name: &str) -> FieldType {
        Builtin::parse(name).map_or_else(|| FieldType::Plugin(name.to_owned()), FieldType::Builtin)
    }

    /// Its name, as definitions and the API give it.
    pub fn name(&self) -> &str {
        match self {
            FieldType::Builtin(builtin) => builtin.as_str(),
            FieldType::Plugin(name) => name,
        }
    }

    /// Whether it is the built-in `builtin`.
    pub fn is(&self, builtin: Builtin) -> bool {
        *self == FieldType::Builtin(builtin)
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_types_are_the_ones_plugins_may_not_take() {
        let names: Vec<&str> = Builtin::ALL.iter().map(|b| b.as_str()).collect();
        assert_eq!(names, vigilo_sdk::loader::BUILTIN_FIELD_TYPES);
        assert_eq!(FieldType::named("date"), FieldType::Builtin(Builtin::Date));
        assert_eq!(
            FieldType::named("holiday_date"),
            FieldType::Plugin("holiday_date".into())
        );
        assert_eq!(FieldType::named("select").to_string(), "select");
    }
}
