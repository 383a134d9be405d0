//! JSON values read as `serde_json::Value` reads them, but noticing an object that gives one
//! key twice (`{"a": 1, "a": 2}`), and refusing a value of more than [`MAX_VALUES`] values.
//!
//! `Value` keeps the last of such values without a word, so a partner's record would lose a
//! field's first value on its way through wharf. `parse` uses this for JSON arrays and JSON
//! Lines and makes such a record invalid, naming the key and both values. It decides nothing
//! else: what an invalid record does is the flow's policy.
//!
//! A value costs ~100 bytes once read (a number keeps its text), so the 64 MiB a record may
//! take on disk could become gigabytes in memory (`[0,0,0,…]`); the cap bounds that.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// The key serde_json (with `arbitrary_precision`) gives a number under, read as a map of one
/// entry whose value is the number's text. `Value` itself recognises numbers by it; the unit
/// test `numbers_keep_their_text` fails should a serde_json release change it.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// The most values (numbers, strings, arrays, objects… at any depth) one value read may hold:
/// ~100 MB in memory.
pub const MAX_VALUES: u64 = 1_000_000;

/// What reading a value noticed.
#[derive(Debug, Default)]
pub struct Tally {
    /// The first key an object gave twice.
    pub twice: Option<Twice>,
    /// Values read so far.
    values: u64,
    /// The keys of the value read, when it is an object, in the order the text gives them
    /// (a `Map` sorts them): what keeps a partner's column order (`parse::KeyOrder`).
    pub keys: Vec<String>,
    /// How deep in the value the reader is (0: the value itself).
    depth: u32,
}

/// The first key an object of a value gave twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Twice {
    /// Where: the keys and array positions leading to it, outermost first, then the key.
    pub path: Vec<String>,
    pub first: Value,
    pub second: Value,
}

impl fmt::Display for Twice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key `{}` is given twice in one object ({}, then {}): a record holds one value per key, so one of them would be lost",
            self.path.join("."),
            self.first,
            self.second
        )
    }
}

/// Reads one value from `d`; `tally.twice` receives the first key an object gave twice (the
/// value then holds the last of its values, as `Value` would). More than [`MAX_VALUES`] values
/// are an error.
pub fn read<'de, D: de::Deserializer<'de>>(d: D, tally: &mut Tally) -> Result<Value, D::Error> {
    Checked { tally }.deserialize(d)
}

/// A seed that builds a `Value`, noting what [`Tally`] holds.
pub struct Checked<'a> {
    pub tally: &'a mut Tally,
}

impl Checked<'_> {
    /// Reads a nested value; when a repeated key was first found inside it, puts `at` (its
    /// key or position) in front of that key's path.
    fn nested<T, E>(&mut self, at: impl FnOnce() -> String, read: impl FnOnce(Checked<'_>) -> Result<T, E>) -> Result<T, E> {
        let before = self.tally.twice.is_some();
        self.tally.depth += 1;
        let value = read(Checked { tally: self.tally });
        self.tally.depth -= 1;
        let value = value?;
        if let (false, Some(t)) = (before, self.tally.twice.as_mut()) {
            t.path.insert(0, at());
        }
        Ok(value)
    }
}

impl<'de> DeserializeSeed<'de> for Checked<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.tally.values += 1;
        if self.tally.values > MAX_VALUES {
            return Err(de::Error::custom(format!("a record holds more than {MAX_VALUES} values")));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    // serde_json (with `arbitrary_precision`) gives every number beyond i64/u64 as its text
    // (see [`NUMBER_TOKEN`]), `1e400` included, so this is for other readers: a float that is
    // no JSON number (an infinity, NaN) is refused, not made `null` (a value lost, or taken
    // for a missing one).
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n).map(Value::Number).ok_or_else(|| E::custom(format!("{n} is no number a record can hold")))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let at = items.len();
            match self.nested(|| at.to_string(), |c| seq.next_element_seed(c))? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_TOKEN && object.is_empty() {
                let text: String = map.next_value()?;
                return text.parse::<Number>().map(Value::Number).map_err(de::Error::custom);
            }
            let value = self.nested(|| key.clone(), |c| map.next_value_seed(c))?;
            match object.entry(key) {
                Entry::Vacant(e) => {
                    if self.tally.depth == 0 {
                        self.tally.keys.push(e.key().clone());
                    }
                    e.insert(value);
                }
                Entry::Occupied(mut e) => {
                    let first = e.insert(value);
                    if self.tally.twice.is_none() {
                        self.tally.twice = Some(Twice { path: vec![e.key().clone()], first, second: e.get().clone() });
                    }
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Value, Option<Twice>) {
        let mut tally = Tally::default();
        let mut d = serde_json::Deserializer::from_str(text);
        let v = read(&mut d, &mut tally).unwrap();
        d.end().unwrap();
        (v, tally.twice)
    }

    /// `[0,0,0,…]` of 20 MB took 1.3 GB; past the cap reading stops.
    #[test]
    fn a_value_of_too_many_values_is_refused() {
        // The array and its elements.
        let most = format!("[{}0]", "0,".repeat(MAX_VALUES as usize - 2));
        parse(&most);
        let over = format!(r#"{{"a":{most}}}"#);
        let e = read(&mut serde_json::Deserializer::from_str(&over), &mut Tally::default()).unwrap_err();
        assert!(e.to_string().starts_with("a record holds more than 1000000 values at line 1 column"), "{e}");
    }

    /// The keys of the value read, in the text's order; those of objects inside it are not.
    #[test]
    fn the_keys_of_an_object_are_noted_in_their_order() {
        let mut tally = Tally::default();
        let text = r#"{"zeta":1,"alpha":{"inner":2,"b":[{"x":1}]},"mid":null,"zeta":3}"#;
        read(&mut serde_json::Deserializer::from_str(text), &mut tally).unwrap();
        assert_eq!(tally.keys, ["zeta", "alpha", "mid"]);
        let mut tally = Tally::default();
        read(&mut serde_json::Deserializer::from_str("[{\"a\":1}]"), &mut tally).unwrap();
        assert!(tally.keys.is_empty());
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let text = r#"{"s":"x","i":-3,"u":18446744073709551615,"f":1.5,"b":true,"n":null,"a":[1,"y",[]],"o":{"k":{}}}"#;
        let (v, twice) = parse(text);
        assert_eq!(v, serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(twice, None);
    }

    /// With `arbitrary_precision` numbers come as a one-entry map under serde_json's token: read
    /// as the number they are, every digit kept (not as an object with a strange key).
    #[test]
    fn numbers_keep_their_text() {
        let (v, _) = parse(r#"{"p":12.10,"big":123456789012345678901234567890,"e":1e400}"#);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"big":123456789012345678901234567890,"e":1e+400,"p":12.10}"#);
        assert!(v["p"].is_number());
    }

    /// A number no float holds reaches the steps as its text, not as `null` (which another
    /// record's null key would equal, or a schema take for a missing value): the map step
    /// refuses it naming its path (`map::to_dynamic`), other steps keep it as written.
    #[test]
    fn a_number_beyond_a_float_is_read_as_written_never_as_null() {
        for (text, want) in [(r#"{"k":1e400}"#, "1e+400"), (r#"{"k":-1e400}"#, "-1e+400"), (r#"{"k":-1e-400}"#, "-1e-400")] {
            let (v, _) = parse(text);
            assert!(v["k"].is_number(), "{text}: {v}");
            assert_eq!(v["k"].to_string(), want);
        }
        // Through the JSON array reader too.
        let mut tally = Tally::default();
        let v = read(&mut serde_json::Deserializer::from_reader(&br#"[{"k":1e400}]"#[..]), &mut tally).unwrap();
        assert_eq!(v[0]["k"].to_string(), "1e+400");
        // A reader handing over a float that is no JSON number: refused, not `null`.
        for f in [f64::INFINITY, f64::NAN] {
            let e = read(serde::de::value::F64Deserializer::<serde::de::value::Error>::new(f), &mut Tally::default()).unwrap_err();
            assert!(e.to_string().ends_with("is no number a record can hold"), "{e}");
        }
        assert_eq!(read(serde::de::value::F64Deserializer::<serde::de::value::Error>::new(1.5), &mut Tally::default()).unwrap(), 1.5);
    }

    #[test]
    fn a_key_given_twice_is_named_with_its_path_and_both_values() {
        let (v, twice) = parse(r#"{"a":1,"a":2}"#);
        assert_eq!(v, serde_json::json!({"a": 2}));
        assert_eq!(
            twice.unwrap().to_string(),
            "key `a` is given twice in one object (1, then 2): a record holds one value per key, so one of them would be lost"
        );
        let (_, twice) = parse(r#"{"id":1,"lines":[{"sku":"x"},{"sku":"y","qty":1,"sku":"z"}],"o":{"k":1,"k":2}}"#);
        let twice = twice.unwrap();
        assert_eq!(twice.path, ["lines", "1", "sku"], "the first repeat found is reported");
        assert_eq!((twice.first, twice.second), (Value::from("y"), Value::from("z")));
    }
}
