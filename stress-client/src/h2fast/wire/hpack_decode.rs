//! HPACK decoding (RFC 7541) of the header blocks a connection receives:
//! integers, strings (Huffman through [`super::huffman`]), the static
//! table and the connection's dynamic table. Each field is handed to a
//! callback as borrowed bytes: an indexed field costs no allocation.
//!
//! Replaces `loona_hpack`'s decoder on the fast path, whose Huffman
//! decoding cost ≈ 10 % of the load thread's CPU (see `huffman.rs`);
//! the tests decode the RFC's examples and what `loona_hpack` decodes.

use std::collections::VecDeque;

use super::huffman;

/// Bytes HPACK counts per table entry beyond its name and value.
const ENTRY_OVERHEAD: usize = 32;
/// Continuation bytes an integer may take: enough for any table size or
/// string length this client accepts, and no shift past 64 bits.
const MAX_INT_BYTES: usize = 5;

/// The static table (Appendix A), index 1 first.
#[rustfmt::skip]
static STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// One connection's decoding context.
#[derive(Debug)]
pub struct HpackDecoder {
    /// Newest first (index 62).
    dynamic: VecDeque<Entry>,
    size: usize,
    /// The size the server last set (a size update), at most `allowed`.
    max_size: usize,
    /// What we allowed the server (SETTINGS_HEADER_TABLE_SIZE).
    allowed: usize,
}

impl HpackDecoder {
    /// A decoder whose table may hold `allowed` bytes (HPACK's count).
    pub fn new(allowed: usize) -> Self {
        HpackDecoder {
            dynamic: VecDeque::new(),
            size: 0,
            max_size: allowed,
            allowed,
        }
    }

    /// Decodes `block`, handing each field to `field` in order. An error
    /// leaves the table unusable: the caller ends the connection.
    pub fn decode(&mut self, block: &[u8], mut field: impl FnMut(&[u8], &[u8])) -> Result<(), String> {
        let mut src = Src { block, pos: 0 };
        let mut fields_seen = false;
        while let Some(&first) = block.get(src.pos) {
            if first & 0x80 != 0 {
                let (name, value) = self.entry(src.int(7)?)?;
                field(name, value);
            } else if first & 0x40 != 0 {
                let (name, value) = self.literal(&mut src, 6)?;
                field(&name, &value);
                self.insert(name.into(), value.into());
            } else if first & 0x20 != 0 {
                if fields_seen {
                    return Err("a table size update after a header field".into());
                }
                self.resize(src.int(5)?)?;
                continue;
            } else {
                // Without indexing (0000) or never indexed (0001): 4-bit prefix.
                let (name, value) = self.literal(&mut src, 4)?;
                field(&name, &value);
            }
            fields_seen = true;
        }
        Ok(())
    }

    /// The entry at HPACK index `index` (1-based: static, then dynamic).
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), String> {
        match index {
            0 => Err("index 0".into()),
            1..=61 => Ok(STATIC_TABLE[index - 1]),
            _ => self
                .dynamic
                .get(index - 62)
                .map(|(n, v)| (&**n, &**v))
                .ok_or_else(|| format!("index {index} is past the table")),
        }
    }

    /// A literal field whose name index has a `prefix`-bit prefix.
    fn literal(&self, src: &mut Src<'_>, prefix: u8) -> Result<(Vec<u8>, Vec<u8>), String> {
        let name = match src.int(prefix)? {
            0 => src.string()?,
            index => self.entry(index)?.0.to_vec(),
        };
        Ok((name, src.string()?))
    }

    fn insert(&mut self, name: Box<[u8]>, value: Box<[u8]>) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        // An entry larger than the table empties it and is not added (4.4).
        self.evict_to(self.max_size.saturating_sub(size));
        if size <= self.max_size {
            self.size += size;
            self.dynamic.push_front((name, value));
        }
    }

    fn resize(&mut self, size: usize) -> Result<(), String> {
        if size > self.allowed {
            return Err(format!(
                "a table size update to {size} bytes (we allow {})",
                self.allowed
            ));
        }
        self.max_size = size;
        self.evict_to(size);
        Ok(())
    }

    /// Drops the oldest entries until the table holds at most `size` bytes.
    fn evict_to(&mut self, size: usize) {
        while self.size > size {
            let Some((name, value)) = self.dynamic.pop_back() else {
                break;
            };
            self.size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// A header block being read.
struct Src<'a> {
    block: &'a [u8],
    pos: usize,
}

impl Src<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.block.get(self.pos).ok_or("a truncated header block")?;
        self.pos += 1;
        Ok(b)
    }

    /// An integer with a `prefix`-bit prefix (5.1).
    fn int(&mut self, prefix: u8) -> Result<usize, String> {
        let mask = (1u8 << prefix) - 1;
        let mut value = usize::from(self.byte()? & mask);
        if value < usize::from(mask) {
            return Ok(value);
        }
        for i in 0..MAX_INT_BYTES {
            let b = self.byte()?;
            value += usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("an integer too large".into())
    }

    /// A string literal (5.2), Huffman-decoded if marked so.
    fn string(&mut self) -> Result<Vec<u8>, String> {
        let huffman = self.block.get(self.pos).is_some_and(|b| b & 0x80 != 0);
        let len = self.int(7)?;
        let end = self.pos.checked_add(len).filter(|&end| end <= self.block.len());
        let raw = &self.block[self.pos..end.ok_or("a string past the header block")?];
        self.pos += len;
        if !huffman {
            return Ok(raw.to_vec());
        }
        let mut out = Vec::with_capacity(len + len / 2);
        huffman::decode(raw, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    type List = Vec<(Vec<u8>, Vec<u8>)>;

    fn ours(d: &mut HpackDecoder, block: &[u8]) -> Result<List, String> {
        let mut list = Vec::new();
        d.decode(block, |n, v| list.push((n.to_vec(), v.to_vec())))
            .map(|()| list)
    }

    fn text(list: &List) -> Vec<(String, String)> {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        list.iter().map(|(n, v)| (s(n), s(v))).collect()
    }

    /// RFC 7541 C.6: three responses with Huffman, a 256-byte table, evictions.
    #[test]
    fn rfc7541_c6_responses_decode_like_loona() {
        let blocks = [
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ];
        let mut d = HpackDecoder::new(256);
        let mut loona = loona_hpack::Decoder::new();
        loona.set_max_allowed_table_size(256);
        for block in blocks.map(hex) {
            let got = ours(&mut d, &block).expect("decodes");
            assert_eq!(got, loona.decode(&block).expect("loona decodes"));
        }
        // After the third: the table is set-cookie, content-encoding, date (C.6.3).
        let names: Vec<&[u8]> = d.dynamic.iter().map(|(n, _)| &**n).collect();
        assert_eq!(names, [&b"set-cookie"[..], b"content-encoding", b"date"]);
        assert_eq!(d.size, 215);
        let last = ours(&mut HpackDecoder::new(256), &hex(blocks[0])).unwrap();
        assert_eq!(text(&last)[0], (":status".into(), "302".into()));
        assert_eq!(
            text(&last)[3],
            ("location".into(), "https://www.example.com".into())
        );
    }

    /// gRPC answers as a server sends them: trailers with a Huffman
    /// `grpc-message`, indexed on later answers; size updates; literals.
    #[test]
    fn grpc_trailers_with_huffman_and_indexing_decode_like_loona() {
        let huff = |s: &[u8]| {
            let e = huffman::tests::encode(s);
            let mut out = vec![0x80 | e.len() as u8];
            out.extend(e);
            out
        };
        let mut first = vec![0x20 | 0x1f, 0x81, 0x01]; // size update to 160
        first.push(0x88); // :status 200 (static)
        first.push(0x40); // literal, incremental indexing, new name
        first.extend(huff(b"grpc-status"));
        first.extend(huff(b"5"));
        first.push(0x40);
        first.extend(huff(b"grpc-message"));
        first.extend(huff(b"account \"x\" was not found"));
        first.push(0x00); // without indexing, new name, plain
        first.extend([4, b'a', b'b', b'c', b'd', 1, b'e']);
        let second = vec![0x88, 0xbf, 0xbe]; // both entries by index
        let mut d = HpackDecoder::new(4096);
        let mut loona = loona_hpack::Decoder::new();
        for block in [first, second] {
            let got = ours(&mut d, &block).expect("decodes");
            assert_eq!(got, loona.decode(&block).expect("loona decodes"));
            assert!(text(&got).contains(&("grpc-message".into(), "account \"x\" was not found".into())));
        }
        assert_eq!(d.max_size, 160);
    }

    #[test]
    fn broken_blocks_are_refused() {
        let mut d = HpackDecoder::new(4096);
        for bad in [
            &[0x80][..],                                 // index 0
            &[0xbe],                                     // past the (empty) dynamic table
            &[0x40, 0x05, b'a'],                         // a string past the block
            &[0x3f, 0xe2, 0x1f],                         // a size update over what we allow (4,097)
            &[0x88, 0x20],                               // a size update after a field
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // an integer too large
            &[0x40, 0x81, 0x00, 0x00],                   // a Huffman name that is bad padding
        ] {
            assert!(ours(&mut d, bad).is_err(), "{bad:?}");
        }
    }
}
