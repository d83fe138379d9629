//! A Wassette-style component: plain exports, WASI only (no `warden:` imports), to show
//! that components written for other WebAssembly MCP hosts run in Warden unchanged.

wit_bindgen::generate!({
    world: "foreign",
});

struct Foreign;

impl Guest for Foreign {
    fn convert(value: f64, from: Unit, to: Unit) -> f64 {
        match (from, to) {
            (Unit::Celsius, Unit::Fahrenheit) => value * 9.0 / 5.0 + 32.0,
            (Unit::Fahrenheit, Unit::Celsius) => (value - 32.0) * 5.0 / 9.0,
            _ => value,
        }
    }

    fn get_env(name: String) -> Result<String, String> {
        std::env::var(&name).map_err(|_| format!("{name} is not set"))
    }
}

impl exports::text::Guest for Foreign {
    fn reverse(s: String) -> String {
        s.chars().rev().collect()
    }
}

export!(Foreign);
