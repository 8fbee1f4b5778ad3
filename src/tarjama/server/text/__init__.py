"""Arabic text in, checked English out: sentences, rules, glossary terms, numbers, names, page furniture and
quality flags."""
