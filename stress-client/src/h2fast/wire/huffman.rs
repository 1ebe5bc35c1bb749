//! HPACK's Huffman code (RFC 7541, Appendix B) and a decoder for it.
//!
//! Why our own: the `loona_hpack` decoder built a hash table of all 257
//! codes for every Huffman string it met and then looked each bit up in
//! it; a server's `grpc-message` (every invalid call of `--invalid-ratio`)
//! cost the load thread tens of µs, ≈ 10 % of its CPU in a stream run
//! (bench P5). The code is canonical (within a length, codes are
//! consecutive; each length's first code follows from the shorter ones),
//! so a symbol is found from the bits read so far with one subtraction
//! and one compare per bit, from a table made once.

use std::sync::OnceLock;

/// The longest code, in bits (EOS's).
const MAX_CODE_BITS: usize = 30;
/// The end-of-string symbol: never valid inside a string.
const EOS: u16 = 256;

/// (code, length in bits) of symbols 0..=256, in symbol order (Appendix B).
#[rustfmt::skip]
const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28), (0xfffffe5, 28),
    (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28),
    (0xfffffef, 28), (0xffffff0, 28), (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10),
    (0xf9, 8), (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6),
    (0x1c, 6), (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6),
    (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7),
    (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5),
    (0x25, 6), (0x26, 6), (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7),
    (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14),
    (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23),
    (0x7fffdb, 23), (0x7fffdc, 23), (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23),
    (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21),
    (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22),
    (0x7fffeb, 23), (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22),
    (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23),
    (0x3fffe8, 22), (0x1ffffec, 25), (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21),
    (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28), (0x7ffffe3, 27),
    (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22),
    (0x1ffffee, 25), (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27),
    (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
];

/// The decoding table: per code length, its first code, how many codes
/// have it and where their symbols start in `symbols` (sorted by code).
struct Table {
    first: [u32; MAX_CODE_BITS + 1],
    count: [u32; MAX_CODE_BITS + 1],
    start: [u16; MAX_CODE_BITS + 1],
    symbols: [u16; 257],
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// Builds the table, checking that the code is canonical (it is: the
/// decoder's correctness rests on it, and the tests decode every symbol).
fn build() -> Table {
    let mut order: Vec<u16> = (0..=EOS).collect();
    order.sort_by_key(|&s| (CODES[usize::from(s)].1, CODES[usize::from(s)].0));
    let mut t = Table {
        first: [0; MAX_CODE_BITS + 1],
        count: [0; MAX_CODE_BITS + 1],
        start: [0; MAX_CODE_BITS + 1],
        symbols: [0; 257],
    };
    let mut next_code = 0u32;
    for (i, &s) in order.iter().enumerate() {
        let (code, len) = CODES[usize::from(s)];
        let len = usize::from(len);
        if t.count[len] == 0 {
            // Canonical: a length's first code is the next code of the
            // shorter lengths, shifted to this length.
            let prev = (1..len).rev().find(|&l| t.count[l] > 0);
            let expected = prev.map_or(0, |l| next_code << (len - l));
            assert_eq!(code, expected, "HPACK's Huffman code is canonical");
            (t.first[len], t.start[len]) = (code, i as u16);
        }
        assert_eq!(
            code,
            t.first[len] + t.count[len],
            "codes of one length are consecutive"
        );
        t.count[len] += 1;
        next_code = code + 1;
        t.symbols[i] = s;
    }
    t
}

/// Appends the Huffman-decoded `src` to `out`; an error for a code that is
/// not one, EOS inside the string, or padding that is not 0–7 one-bits.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let t = table();
    let (mut code, mut len) = (0u32, 0usize);
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let at = code.wrapping_sub(t.first[len]);
            if at < t.count[len] {
                let symbol = t.symbols[usize::from(t.start[len]) + at as usize];
                if symbol == EOS {
                    return Err("EOS inside a Huffman string".into());
                }
                out.push(symbol as u8);
                (code, len) = (0, 0);
            } else if len == MAX_CODE_BITS {
                return Err("not a Huffman code".into());
            }
        }
    }
    // What is left must be padding: the first 0-7 bits of EOS, all ones.
    if len > 7 || code != (1u32 << len) - 1 {
        return Err("bad Huffman padding".into());
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Huffman-encodes `src` (padded with one-bits), for tests.
    pub fn encode(src: &[u8]) -> Vec<u8> {
        let (mut out, mut acc, mut bits) = (Vec::new(), 0u64, 0u32);
        for &b in src {
            let (code, len) = CODES[usize::from(b)];
            acc = (acc << len) | u64::from(code);
            bits += u32::from(len);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
        }
        out
    }

    fn decoded(src: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        decode(src, &mut out).map(|()| out)
    }

    #[test]
    fn every_symbol_and_mixed_strings_round_trip_and_match_loona() {
        let all: Vec<u8> = (0..=255).collect();
        for s in [
            &all[..],
            b"",
            b"a",
            b"www.example.com",
            b"account bench-hot was not found",
        ] {
            let encoded = encode(s);
            assert_eq!(decoded(&encoded).as_deref(), Ok(s), "{s:?}");
            let loona = loona_hpack::huffman::HuffmanDecoder::new().decode(&encoded);
            assert_eq!(loona.as_deref(), Ok(s));
        }
        for b in 0..=255u8 {
            assert_eq!(decoded(&encode(&[b, b'x', b])), Ok(vec![b, b'x', b]));
        }
    }

    #[test]
    fn rfc7541_examples_decode() {
        // C.4.1: "www.example.com"; C.6.1: "302", "private", a date.
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(decoded(&www).as_deref(), Ok(&b"www.example.com"[..]));
        assert_eq!(decoded(&[0x64, 0x02]).as_deref(), Ok(&b"302"[..]));
        assert_eq!(
            decoded(&[0xae, 0xc3, 0x77, 0x1a, 0x4b]).as_deref(),
            Ok(&b"private"[..])
        );
    }

    #[test]
    fn bad_padding_eos_and_non_codes_are_refused() {
        // 'a' is 00011 (5 bits): three zero bits of padding.
        assert!(decoded(&[0b0001_1000]).is_err());
        // A whole byte of padding (8 one-bits after a symbol).
        assert!(decoded(&[0b0001_1111, 0xff]).is_err());
        // EOS itself (30 one-bits), padded.
        assert!(decoded(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(decoded(&[0b0001_1111]).as_deref(), Ok(&b"a"[..]));
    }
}
