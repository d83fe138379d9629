//! Echo functions for every WIT type shape, in a plain world (no Warden imports).

wit_bindgen::generate!({
    world: "types",
});

struct Types;

impl Guest for Types {
    fn echo_bool(v: bool) -> bool {
        v
    }
    fn echo_s8(v: i8) -> i8 {
        v
    }
    fn echo_u8(v: u8) -> u8 {
        v
    }
    fn echo_s16(v: i16) -> i16 {
        v
    }
    fn echo_u16(v: u16) -> u16 {
        v
    }
    fn echo_s32(v: i32) -> i32 {
        v
    }
    fn echo_u32(v: u32) -> u32 {
        v
    }
    fn echo_s64(v: i64) -> i64 {
        v
    }
    fn echo_u64(v: u64) -> u64 {
        v
    }
    fn echo_f32(v: f32) -> f32 {
        v
    }
    fn echo_f64(v: f64) -> f64 {
        v
    }
    fn echo_char(v: char) -> char {
        v
    }
    fn echo_string(v: String) -> String {
        v
    }
    fn echo_list(v: Vec<String>) -> Vec<String> {
        v
    }
    fn echo_bytes(v: Vec<u8>) -> Vec<u8> {
        v
    }
    fn echo_tuple(v: (String, u32, bool)) -> (String, u32, bool) {
        v
    }
    fn echo_record(v: Point) -> Point {
        v
    }
    fn echo_nested(v: Shape) -> Shape {
        v
    }
    fn echo_variant(v: Message) -> Message {
        v
    }
    fn echo_enum(v: Colour) -> Colour {
        v
    }
    fn echo_flags(v: Permissions) -> Permissions {
        v
    }
    fn echo_option(v: Option<u32>) -> Option<u32> {
        v
    }
    fn echo_option_record(v: Option<Point>) -> Option<Point> {
        v
    }
    fn echo_result(v: Result<u32, String>) -> Result<u32, String> {
        v
    }
    fn echo_results(v: Vec<Result<u32, String>>) -> Vec<Result<u32, String>> {
        v
    }
    fn describe(name: String, count: u16, tags: Vec<String>, colour: Option<Colour>) -> String {
        format!("{name} x{count} [{}] {colour:?}", tags.join(","))
    }
    fn fallible(fail: bool) -> Result<String, String> {
        if fail {
            Err("asked to fail".to_owned())
        } else {
            Ok("fine".to_owned())
        }
    }
    fn nothing(_v: String) {}
    fn answer() -> u32 {
        42
    }
}

impl exports::math::Guest for Types {
    fn add(a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
    fn divide(a: f64, b: f64) -> Result<f64, String> {
        if b == 0.0 {
            Err(format!("cannot divide {a} by zero"))
        } else {
            Ok(a / b)
        }
    }
}

export!(Types);
