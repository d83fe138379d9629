//! Instruction shapes Cranelift has miscompiled before (the adversarial catalog's item
//! 2), run by the engine Warden configures and compared with a reference written in
//! Rust from the specification, over edge values and generated ones: `i8x16.swizzle`,
//! `i64x2.shr_s`, `i8x16.shr_s`, `i32x4.trunc_sat_f32x4_s`, `f32x4.min` (NaN and
//! signed zeros), and the scalar `i32.rem_s`/`i64.rem_s` of the minimum by -1, `i64.rotl`
//! and `i32.div_s` overflow (a trap).

use serde_json::json;
use warden::grant::Grant;

use crate::audited::Audited;

/// Each `op` takes two v128 values as four u64 halves (low first) and returns half
/// `hi` (0 or 1) of the result.
const SHAPES: &str = r#"
(component
  (core module $m
    (func $v (param i64 i64) (result v128)
      (i64x2.replace_lane 1 (i64x2.splat (local.get 0)) (local.get 1)))
    (func $half (param v128 i32) (result i64)
      (if (result i64) (local.get 1)
        (then (i64x2.extract_lane 1 (local.get 0)))
        (else (i64x2.extract_lane 0 (local.get 0)))))
    (func (export "swizzle") (param i64 i64 i64 i64 i32) (result i64)
      (call $half (i8x16.swizzle (call $v (local.get 0) (local.get 1))
        (call $v (local.get 2) (local.get 3))) (local.get 4)))
    (func (export "i64x2-shr-s") (param i64 i64 i64 i64 i32) (result i64)
      (call $half (i64x2.shr_s (call $v (local.get 0) (local.get 1))
        (i32.wrap_i64 (local.get 2))) (local.get 4)))
    (func (export "i8x16-shr-s") (param i64 i64 i64 i64 i32) (result i64)
      (call $half (i8x16.shr_s (call $v (local.get 0) (local.get 1))
        (i32.wrap_i64 (local.get 2))) (local.get 4)))
    (func (export "trunc-sat") (param i64 i64 i64 i64 i32) (result i64)
      (call $half (i32x4.trunc_sat_f32x4_s (call $v (local.get 0) (local.get 1)))
        (local.get 4)))
    (func (export "f32x4-min") (param i64 i64 i64 i64 i32) (result i64)
      (call $half (f32x4.min (call $v (local.get 0) (local.get 1))
        (call $v (local.get 2) (local.get 3))) (local.get 4)))
    (func (export "rem-s") (param i64 i64 i64 i64 i32) (result i64)
      (if (result i64) (local.get 4)
        (then (i64.rem_s (local.get 0) (local.get 2)))
        (else (i64.extend_i32_s (i32.rem_s (i32.wrap_i64 (local.get 0))
          (i32.wrap_i64 (local.get 2)))))))
    (func (export "rotl") (param i64 i64 i64 i64 i32) (result i64)
      (i64.rotl (local.get 0) (local.get 2)))
    (func (export "div-s") (param i32 i32) (result i32)
      (i32.div_s (local.get 0) (local.get 1))))
  (core instance $i (instantiate $m))
  (type $op (func (param "a-lo" u64) (param "a-hi" u64) (param "b-lo" u64)
    (param "b-hi" u64) (param "hi" u32) (result u64)))
  (func (export "swizzle") (type $op) (canon lift (core func $i "swizzle")))
  (func (export "i64x2-shr-s") (type $op) (canon lift (core func $i "i64x2-shr-s")))
  (func (export "i8x16-shr-s") (type $op) (canon lift (core func $i "i8x16-shr-s")))
  (func (export "trunc-sat") (type $op) (canon lift (core func $i "trunc-sat")))
  (func (export "f32x4-min") (type $op) (canon lift (core func $i "f32x4-min")))
  (func (export "rem-s") (type $op) (canon lift (core func $i "rem-s")))
  (func (export "rotl") (type $op) (canon lift (core func $i "rotl")))
  (func (export "div-s") (param "a" s32) (param "b" s32) (result s32)
    (canon lift (core func $i "div-s")))
)
"#;

fn bytes(lo: u64, hi: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&lo.to_le_bytes());
    out[8..].copy_from_slice(&hi.to_le_bytes());
    out
}

fn halves(v: [u8; 16]) -> [u64; 2] {
    [
        u64::from_le_bytes(v[..8].try_into().unwrap()),
        u64::from_le_bytes(v[8..].try_into().unwrap()),
    ]
}

fn lanes32(lo: u64, hi: u64) -> [u32; 4] {
    [lo as u32, (lo >> 32) as u32, hi as u32, (hi >> 32) as u32]
}

fn from_lanes32(l: [u32; 4]) -> [u64; 2] {
    [
        u64::from(l[0]) | u64::from(l[1]) << 32,
        u64::from(l[2]) | u64::from(l[3]) << 32,
    ]
}

/// The specification's answer of `op` for `(a, b)`: both halves.
fn reference(op: &str, a: [u64; 2], b: [u64; 2]) -> [u64; 2] {
    match op {
        "swizzle" => {
            let (a, s) = (bytes(a[0], a[1]), bytes(b[0], b[1]));
            halves(std::array::from_fn(|i| {
                a.get(usize::from(s[i])).copied().unwrap_or(0)
            }))
        }
        "i64x2-shr-s" => {
            let n = (b[0] as u32) & 63;
            [(a[0] as i64 >> n) as u64, (a[1] as i64 >> n) as u64]
        }
        "i8x16-shr-s" => {
            let n = (b[0] as u32) & 7;
            halves(bytes(a[0], a[1]).map(|x| ((x as i8) >> n) as u8))
        }
        "trunc-sat" => from_lanes32(lanes32(a[0], a[1]).map(|x| f32::from_bits(x) as i32 as u32)),
        "f32x4-min" => {
            let (x, y) = (lanes32(a[0], a[1]), lanes32(b[0], b[1]));
            from_lanes32(std::array::from_fn(|i| {
                let (p, q) = (f32::from_bits(x[i]), f32::from_bits(y[i]));
                if p.is_nan() || q.is_nan() {
                    // Any NaN: the result is a NaN; compared below as "a NaN".
                    f32::NAN.to_bits()
                } else if p == q {
                    // -0 and +0: the minimum is -0.
                    x[i] | y[i]
                } else {
                    p.min(q).to_bits()
                }
            }))
        }
        "rem-s" => [
            i64::from((a[0] as i32).wrapping_rem(b[0] as i32)) as u64,
            (a[0] as i64).wrapping_rem(b[0] as i64) as u64,
        ],
        "rotl" => {
            let r = a[0].rotate_left((b[0] & 63) as u32);
            [r, r]
        }
        _ => unreachable!(),
    }
}

/// Edge values of a 64-bit half, then generated ones (a fixed xorshift: the same
/// every run).
fn inputs() -> Vec<u64> {
    let mut out = vec![
        0,
        1,
        u64::MAX,
        0x8000_0000_0000_0000,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_8000_0000,
        0x7fc0_0000_ffc0_0000,               // NaN lanes
        0x8000_0000_0000_0000 | 0x4f00_0000, // -0.0 and 2^31 as f32
        0x0f0e_0d0c_0b0a_0908,
        0x1f10_ff80_7f11_0010, // swizzle indices in and out of range
    ];
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..14 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x);
    }
    out
}

#[tokio::test]
async fn known_miscompile_shapes_agree_with_the_specification() {
    let host = Audited::new();
    let plugin = host.load("shapes", SHAPES, Grant::default()).unwrap();
    let values = inputs();
    let ops = [
        "swizzle",
        "i64x2-shr-s",
        "i8x16-shr-s",
        "trunc-sat",
        "f32x4-min",
        "rem-s",
        "rotl",
    ];
    for op in ops {
        for (n, &a) in values.iter().enumerate() {
            let a = [a, values[(n + 3) % values.len()]];
            let b = [
                values[(n * 7 + 1) % values.len()],
                values[(n * 5 + 2) % values.len()],
            ];
            let b = match op {
                // No divisor of 0 (a trap, tried below).
                "rem-s" if b[0] as i32 == 0 || b[0] == 0 => [b[0] | 1, b[1]],
                _ => b,
            };
            let expected = reference(op, a, b);
            for (hi, want) in expected.into_iter().enumerate() {
                let args =
                    json!({"a-lo": a[0], "a-hi": a[1], "b-lo": b[0], "b-hi": b[1], "hi": hi});
                let got = host
                    .call(&plugin, op, args)
                    .await
                    .unwrap()
                    .as_u64()
                    .unwrap();
                if op == "f32x4-min" {
                    // NaN lanes may be any NaN.
                    let (g, w) = (lanes32(got, 0), lanes32(want, 0));
                    for lane in 0..2 {
                        let (g, w) = (f32::from_bits(g[lane]), f32::from_bits(w[lane]));
                        assert!(
                            (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits(),
                            "{op} {a:x?} {b:x?} half {hi} lane {lane}: {g} want {w}"
                        );
                    }
                } else {
                    assert_eq!(
                        got, want,
                        "{op} {a:x?} {b:x?} half {hi}: {got:#x} want {want:#x}"
                    );
                }
            }
        }
    }
    // The minimum divided by -1 overflows: a trap, on record; the next call served.
    let err = host
        .call(&plugin, "div-s", json!({"a": i32::MIN, "b": -1}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "trap", "{err}");
    assert!(
        host.last_failure("div-s", "trap")
            .contains("integer overflow")
    );
    let ok = host.call(&plugin, "div-s", json!({"a": -7, "b": 2})).await;
    assert_eq!(ok.unwrap(), json!(-3));
}
