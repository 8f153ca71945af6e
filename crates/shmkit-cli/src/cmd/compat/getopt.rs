//! A small emulation of glibc's `getopt_long` with argument permutation, so that the
//! drop-in tools accept the same command lines as util-linux and print the same
//! messages for bad ones (`invalid option -- 'x'`, `unrecognized option '--foo'`,
//! `option requires an argument -- 'i'`, …).

/// Whether an option takes an argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// No argument.
    No,
    /// A required argument (`-i 5`, `-i5`, `--id=5`, `--id 5`).
    Required,
    /// An optional argument, attached only (`-ashm`, `--all=shm`).
    Optional,
}

/// One long option: name, argument, the short option it stands for.
pub struct LongOpt {
    pub name: &'static str,
    pub has_arg: HasArg,
    pub val: char,
}

/// One parsed item.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// An option and its argument.
    Opt(char, Option<String>),
    /// A parse error, already worded like glibc (without the program name).
    Error(String),
}

/// Parses `args` (without argv[0]). Returns the options in order (stopping after the
/// first error, as util-linux exits there) and the operands, which getopt permutes to
/// the end. `--` ends the options.
pub fn parse(args: &[String], short: &str, long: &[LongOpt]) -> (Vec<Item>, Vec<String>) {
    let shorts: Vec<(char, HasArg)> = {
        let cs: Vec<char> = short.chars().collect();
        let mut v = Vec::new();
        let mut i = 0;
        while i < cs.len() {
            let c = cs[i];
            let mut h = HasArg::No;
            if cs.get(i + 1) == Some(&':') {
                h = HasArg::Required;
                i += 1;
                if cs.get(i + 1) == Some(&':') {
                    h = HasArg::Optional;
                    i += 1;
                }
            }
            v.push((c, h));
            i += 1;
        }
        v
    };
    let mut items = Vec::new();
    let mut operands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let exact = long.iter().find(|o| o.name == name);
            let cands: Vec<&LongOpt> = long.iter().filter(|o| o.name.starts_with(name)).collect();
            let opt = match exact {
                Some(o) => o,
                None if cands.len() == 1 => cands[0],
                None if cands.is_empty() => {
                    items.push(Item::Error(format!("unrecognized option '{a}'")));
                    return (items, operands);
                }
                None => {
                    let mut m = format!("option '--{name}' is ambiguous; possibilities:");
                    for c in cands {
                        m.push_str(&format!(" '--{}'", c.name));
                    }
                    items.push(Item::Error(m));
                    return (items, operands);
                }
            };
            match (opt.has_arg, value) {
                (HasArg::No, Some(_)) => {
                    items.push(Item::Error(format!(
                        "option '--{}' doesn't allow an argument",
                        opt.name
                    )));
                    return (items, operands);
                }
                (HasArg::No, None) => items.push(Item::Opt(opt.val, None)),
                (HasArg::Optional, v) => items.push(Item::Opt(opt.val, v)),
                (HasArg::Required, Some(v)) => items.push(Item::Opt(opt.val, Some(v))),
                (HasArg::Required, None) => {
                    if i < args.len() {
                        items.push(Item::Opt(opt.val, Some(args[i].clone())));
                        i += 1;
                    } else {
                        items.push(Item::Error(format!(
                            "option '--{}' requires an argument",
                            opt.name
                        )));
                        return (items, operands);
                    }
                }
            }
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let cs: Vec<char> = a.chars().skip(1).collect();
            let mut j = 0;
            while j < cs.len() {
                let c = cs[j];
                j += 1;
                let Some(&(_, h)) = shorts.iter().find(|(s, _)| *s == c && c != ':') else {
                    items.push(Item::Error(format!("invalid option -- '{c}'")));
                    return (items, operands);
                };
                match h {
                    HasArg::No => items.push(Item::Opt(c, None)),
                    HasArg::Optional => {
                        let rest: String = cs[j..].iter().collect();
                        items.push(Item::Opt(c, (!rest.is_empty()).then_some(rest)));
                        break;
                    }
                    HasArg::Required => {
                        let rest: String = cs[j..].iter().collect();
                        if !rest.is_empty() {
                            items.push(Item::Opt(c, Some(rest)));
                        } else if i < args.len() {
                            items.push(Item::Opt(c, Some(args[i].clone())));
                            i += 1;
                        } else {
                            items
                                .push(Item::Error(format!("option requires an argument -- '{c}'")));
                            return (items, operands);
                        }
                        break;
                    }
                }
            }
            continue;
        }
        operands.push(a.clone());
    }
    (items, operands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const LONG: &[LongOpt] = &[
        LongOpt {
            name: "id",
            has_arg: HasArg::Required,
            val: 'i',
        },
        LongOpt {
            name: "all",
            has_arg: HasArg::Optional,
            val: 'a',
        },
        LongOpt {
            name: "human",
            has_arg: HasArg::No,
            val: 'H',
        },
    ];

    #[test]
    fn clusters_arguments_and_permutation() {
        let (items, ops) = parse(
            &s(&["-mi5", "foo", "--id", "7", "--hum", "-a", "x"]),
            "mi:a::",
            LONG,
        );
        assert_eq!(
            items,
            vec![
                Item::Opt('m', None),
                Item::Opt('i', Some("5".into())),
                Item::Opt('i', Some("7".into())),
                Item::Opt('H', None),
                Item::Opt('a', None),
            ]
        );
        assert_eq!(ops, s(&["foo", "x"]));
    }

    #[test]
    fn errors_are_worded_like_glibc() {
        let (items, _) = parse(&s(&["-x"]), "m", LONG);
        assert_eq!(items, vec![Item::Error("invalid option -- 'x'".into())]);
        let (items, _) = parse(&s(&["--foo"]), "m", LONG);
        assert_eq!(
            items,
            vec![Item::Error("unrecognized option '--foo'".into())]
        );
        let (items, _) = parse(&s(&["-i"]), "i:", LONG);
        assert_eq!(
            items,
            vec![Item::Error("option requires an argument -- 'i'".into())]
        );
    }
}
