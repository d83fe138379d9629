//! `add(a, b)`: a typed tool with no imports, the same component in every host the peer
//! benchmark compares.

wit_bindgen::generate!({
    world: "adder",
});

struct Adder;

impl Guest for Adder {
    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
}

export!(Adder);
