//! The one `multipart/form-data` body the console reads: a form with a file input (the CSV of
//! a mapping table). Only what a browser sends is understood: parts with a
//! `Content-Disposition: form-data; name="…"` header, the part's bytes up to the next
//! boundary. A file's text is read as UTF-8 by its consumer, which names a bad file.

/// One part of the body: its form name, the file name when it is a file, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub body: Vec<u8>,
}

/// The boundary of a `multipart/form-data` content type, or None for any other type.
pub(super) fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

/// `name="x"` of a Content-Disposition value (quoted; a quote inside is escaped as `%22`).
fn param(value: &str, key: &str) -> Option<String> {
    value.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of `body`, in order; a body that does not follow the format gives what could be
/// read before the break.
pub(super) fn parts(body: &[u8], boundary: &str) -> Vec<Part> {
    let delim = format!("--{boundary}").into_bytes();
    let mut out = Vec::new();
    let Some(mut at) = find(body, &delim, 0) else {
        return out;
    };
    loop {
        let start = at + delim.len();
        // `--` after the delimiter ends the body.
        if body.get(start..start + 2) == Some(b"--") {
            break;
        }
        let Some(head_end) = find(body, b"\r\n\r\n", start) else {
            break;
        };
        let head = String::from_utf8_lossy(&body[start..head_end]);
        let content = head_end + 4;
        let mut next_delim = b"\r\n".to_vec();
        next_delim.extend_from_slice(&delim);
        let Some(end) = find(body, &next_delim, content) else {
            break;
        };
        let disposition = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then(|| v.trim().to_string())
        });
        if let Some(d) = disposition
            && let Some(name) = param(&d, "name")
        {
            out.push(Part {
                name,
                file_name: param(&d, "filename"),
                body: body[content..end].to_vec(),
            });
        }
        at = end + 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_form_with_a_file_is_read() {
        let ct = "multipart/form-data; boundary=----WebKitFormBoundaryX1";
        let b = boundary(ct).unwrap();
        assert_eq!(b, "----WebKitFormBoundaryX1");
        let body = "------WebKitFormBoundaryX1\r\n\
            Content-Disposition: form-data; name=\"note\"\r\n\r\n\
            hi\r\n\
            ------WebKitFormBoundaryX1\r\n\
            Content-Disposition: form-data; name=\"csv\"; filename=\"hosts.csv\"\r\n\
            Content-Type: text/csv\r\n\r\n\
            host,team\r\nweb-1,payments\r\n\r\n\
            ------WebKitFormBoundaryX1--\r\n";
        let got = parts(body.as_bytes(), &b);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "note");
        assert_eq!(got[0].body, b"hi");
        assert_eq!(got[1].file_name.as_deref(), Some("hosts.csv"));
        assert_eq!(got[1].body, b"host,team\r\nweb-1,payments\r\n");
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert!(parts(b"garbage", &b).is_empty());
    }
}
