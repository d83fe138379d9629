//! The {{name}} plugin: each export of `wit/world.wit` is a method of `Guest`.

wit_bindgen::generate!({
    world: "{{name}}",
    path: "wit",
    generate_all,
});

use warden::host::log::{self, Level};

struct Plugin;

impl Guest for Plugin {
    fn hello(name: String) -> Result<String, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("name is empty; give a name, e.g. \"Ada\"".to_string());
        }
        log::write(Level::Info, "greeting", &[("name".into(), name.into())]);
        Ok(format!("Hello, {name}!"))
    }
}

export!(Plugin);
