//! Turning text into URL slugs.

/// Lowercases `text`, folds Latin-1 accented letters to ASCII, and joins the
/// runs of ASCII letters and digits with single `-`. Anything else (other
/// scripts, punctuation, whitespace) separates words.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    // A separator is written only when another word follows, so the slug never
    // starts or ends with `-` and never has two in a row.
    let mut separate = false;
    let mut buffer = [0; 4];
    for c in text.chars().flat_map(char::to_lowercase) {
        let piece = match c {
            'a'..='z' | '0'..='9' => Some(&*c.encode_utf8(&mut buffer)),
            _ => fold(c),
        };
        match piece {
            Some(piece) => {
                if separate && !slug.is_empty() {
                    slug.push('-');
                }
                separate = false;
                slug.push_str(piece);
            }
            None => separate = true,
        }
    }
    slug
}

/// The ASCII spelling of a lowercase Latin-1 letter (and of `œ`, which Latin-1
/// lacks but French needs).
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'æ' => "ae",
        'ç' => "c",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ð' => "d",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
        'œ' => "oe",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'ý' | 'ÿ' => "y",
        'þ' => "th",
        'ß' => "ss",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_and_hyphenates() {
        assert_eq!(slugify("Hello, World!"), "hello-world");
        assert_eq!(slugify("  Rust 2024 edition  "), "rust-2024-edition");
        assert_eq!(slugify("a -- b__c"), "a-b-c");
    }

    #[test]
    fn folds_latin1_accents() {
        assert_eq!(slugify("Crème Brûlée!"), "creme-brulee");
        assert_eq!(slugify("Ærøskøbing"), "aeroskobing");
        assert_eq!(slugify("Straße"), "strasse");
        assert_eq!(slugify("ÇA VA, NIÑO?"), "ca-va-nino");
        assert_eq!(slugify("Œuvre"), "oeuvre");
    }

    #[test]
    fn other_scripts_separate_words() {
        assert_eq!(slugify("日本 tokyo"), "tokyo");
        assert_eq!(slugify("crab🦀rust"), "crab-rust");
    }

    #[test]
    fn nothing_to_keep_gives_an_empty_slug() {
        assert_eq!(slugify(""), "");
        assert_eq!(slugify("!!! ---"), "");
    }
}
