"""Code-aware signals: what in a prompt's code makes it a security task even when the words do not say so.

Each signal is a named linear-time (RE2) pattern over the prompt; ``signals(text)`` returns the names that
fire. They are features for the engines (one binary column each), not rules: the trained model weighs them
against the words. Patterns run on callers' prompts, so they are RE2 like route ``match`` patterns.
"""

from __future__ import annotations

import re2

from gateway.routing.patterns import compile_pattern

_INPUT = (r"(request\.|req\.(query|body|params?|headers|cookies|files?)|\$_(GET|POST|COOKIE|REQUEST|SERVER)|"
          r"getParameter|"
          r"r\.URL\.Query|FormValue|params\[|location\.(hash|search)|Request\.(Cookies|Query|Form)|\binput\(|"
          r"argv|\bread -p|os\.environ|getenv|upload\w*\.(read|stream)|request\.files|web::Query|"
          r"query\.[a-z_]+\b(?:[^(]|$))")

PATTERNS: dict[str, str] = {
    # SQL text built from variables: concatenation, interpolation, format strings.
    "sql_built": r"(?i)\b(select|insert|update|delete)\b[^\n]{0,200}(\"\s*\+|'\s*\+|\+\s*[\"']|[\"']\s*\.\s*\$|"
                 r"\$[a-z_]\w*|\{[a-z_][\w.\[\]'\"]*\}|%s|#\{|\$\{)",
    "sql_format": r"(?i)(sprintf|format|f\")\s*\(?[\"'][^\"'\n]{0,80}\b(select|insert|update|delete)\b",
    "eval_exec": r"\b(eval|exec|execfile|compile)\s*\(|\beval\s+[\"$]",
    "template_injection": r"render_template_string|Template\(\s*[\"'][^\"'\n]*[\"']\s*\+|new Function\(",
    "shell_call": r"os\.system|os\.popen|shell_exec|passthru|proc_open|subprocess\.|child_process|"
                  r"Runtime\.getRuntime\(\)\.exec|exec\.Command|\bsystem\s*\(|popen\(|\bexec\(\s*`",
    "shell_interp": r"(?i)(shell\s*=\s*true|\"sh\",\s*\"-c\"|\$\{[a-z_]|[\"']\s*\+\s*\w|\"\s*\.\s*\$|%s|\$\(|`[^`\n]*\$)",
    "deserialize": r"pickle\.loads?|cPickle|yaml\.load\(|unserialize\(|ObjectInputStream|readObject\(|"
                   r"marshal\.loads|BinaryFormatter|jsonpickle",
    "weak_hash": r"(?i)\b(md5|sha1)\b|hashlib\.(md5|sha1)",
    "weak_crypto": r"MODE_ECB|\bDES\b|RC4|AES/ECB|\bECB\b",
    "weak_random": r"Math\.random\(\)|random\.(choice|random|randint)|\brand\(\)|mt_rand",
    "secret_literal": r"(?i)\w*(password|passwd|pwd|secret|api_?key|_key|token|access_key)\w*\s*[:=]\s*[\"'][^\"'\s]{6,}[\"']|"
                      r"AKIA[0-9A-Z]{16}|\bsk[-_](live_)?[A-Za-z0-9]{16,}|\bghp_[A-Za-z0-9]{20,}|\s-p[A-Za-z0-9!]{6,}\b",
    "tls_off": r"verify\s*=\s*False|InsecureSkipVerify|rejectUnauthorized\s*:\s*false|VERIFYPEER|"
               r"verify_signature\"?\s*:\s*False|CERT_NONE",
    # Auth and crypto *code*: the identifier used as code (called, indexed, assigned, compared), not the word in prose.
    "auth_code": r"(?i)\b(jwt|sessions?|cookies?|password|passwd|login|auth\w*|role|is_admin|hmac|signature|"
                 r"token|csrf|oauth)\w*\s*(\(|\[|\.[a-z]|==|=|:\s*[\"'\w])",
    "crypto_code": r"(?i)\b(cipher|encrypt|decrypt|aes|rsa|hmac|hashlib|bcrypt|crypto)\w*\s*(\(|\.[a-z]|=)",
    "c_unsafe": r"\b(strcpy|strcat|gets|sprintf|vsprintf|memcpy|scanf)\s*\(",
    "format_string": r"\bprintf\(\s*[a-z_]\w*\s*\)",
    "dom_sink": r"innerHTML|outerHTML|document\.write|dangerouslySetInnerHTML|\.html\(\s*[a-z]",
    "html_interp": r"<(div|h1|p|span|a)[^>\n]*>[^<\n]*(\$\{|\"\s*\+|\+\s*\")",
    "file_from_input": r"(open|include|require|ServeFile|readFile|sendFile|fopen|File::open)\s*\([^)\n]*(\+|\$|format!)",
    "archive_extract": r"\.extract(all)?\(|ZipFile|tarfile",
    "redirect_input": r"redirect\(\s*(req|request|params|\$_)",
    "xml_parser": r"DocumentBuilderFactory|XMLReader|SAXParser|etree\.(parse|fromstring)|libxml|simplexml_load",
    "cors_reflect": r"Access-Control-Allow-(Origin|Credentials)",
    "mass_assign": r"setattr\(\s*\w+\s*,\s*\w+\s*,|\.update_attributes\(params|permit!",
    "request_input": _INPUT,
    # Fetching a URL (SSRF when the URL comes from the request: with request_input this is a tainted sink).
    "http_fetch": r"requests\.(get|post|request)\(|urlopen\(|http\.Get\(|axios\.(get|post)\(|curl_exec|"
                  r"\bfetch\(\s*(req|url|params)",
    # Check-then-use on a file (TOCTOU): an existence/permission check followed closely by the use.
    "check_then_use": r"(os\.access|os\.path\.(exists|isfile)|os\.stat|File\.exists|\baccess\()[\s\S]{0,300}"
                      r"\b(open|chmod|chown|copy|rename|write)\w*\(",
    # An object looked up by an id from the URL with no owner in the lookup (IDOR when nothing else checks).
    "object_by_id": r"@PathVariable|findById\(\s*\w*[iI]d\s*\)|objects\.get\(\s*(pk|id)\s*=|params\[:id\]|"
                    r"req\.params\.id|<int:\w*id>",
    # A secret compared with == / strcmp (timing leak), a nested regex quantifier (ReDoS), a recursive merge of
    # request data into an object (prototype pollution).
    "secret_compare": r"(?i)(token|key|secret|signature|digest|hmac)\w*[\]\)\"']*\s*(===?|!=)|"
                      r"strcmp\([^)\n]*(token|key|secret|pass)",
    "nested_quantifier": r"\((\[[^\]\n]*\]|[^()\n])*[+*]\)[+*{]",
    "object_merge": r"for\s*\(\s*(const|let|var)\s+\w+\s+in\s+\w+\s*\)[\s\S]{0,200}\[\w+\]\s*=|__proto__|"
                    r"constructor\.prototype",
}

# The vocabulary of security work (English, plus a few French/German/Spanish words). A prose request ("threat
# model our upload service") carries its task in these words; counted, so two or more weigh more. Words with an
# everyday sense (attack, threat, secret, audit, breach, payload, injection, exploit, shell, token) count only in
# their security phrases ("SQL injection", "attack surface", "security review"): alone they are left to the
# n-grams, which learn from the corpus's hard negatives (a heart attack, a financial audit, a secret santa).
SECURITY_TERMS = (r"(?i)\b(vulnerabilit|vulnerable (to (an? )?(attack|injection|xss|csrf|ssrf)|code|endpoint|version|"
                  r"depend|librar|package)|exploitab|exploit (chain|code|this|that|the bug|it)|attacker|malicious|"
                  r"injectable|(sql|command|code|prompt|ldap|header|template|xpath|nosql|os|shell) injection|xss|csrf|"
                  r"ssrf|xxe|idor|rce|cve|cvss|owasp|pentest|penetration test|threat model|stride|"
                  r"security[- ](review|issue|hole|risk|bug|flaw|problem|test|header|implication|weakness|audit|wise)|"
                  r"secure\b|securely|insecure|harden|sanitiz|privilege|escalat|bypass|spoof|tamper|phishing|exfiltrat|"
                  r"data leak|leak(ed|s)? (secret|key|token|credential|password)|taint|untrusted|buffer overflow|"
                  r"heap overflow|deserializ|gadget|forgery|smuggl|clickjack|traversal|replay attack|brute.?forc|"
                  r"credential|stuffing|mitm|man-in-the-middle|hijack|backdoor|malware|seccomp|disclosure|red team|"
                  r"blast radius|(timing|padding oracle|dos|denial of service|side.channel|supply.chain|injection) "
                  r"attack|"
                  r"attack (surface|vector|path|chain)|secrets? (handling|manage|leak|scann|rotat)|"
                  r"(audit|check|review)\w* (this|it|the code|our code) for (weakness|hole|flaw)|"
                  r"failles|sécurité|angreifer|sicherheit|seguridad|vulnerabilidad|ausnutz|adversar|compromis|"
                  r"break into)")

_SINKS = ("sql_built", "sql_format", "eval_exec", "template_injection", "shell_call", "deserialize",
          "file_from_input", "redirect_input", "dom_sink", "html_interp", "xml_parser", "http_fetch", "object_merge")


class Signals:
    """The compiled patterns, matched in one pass (an RE2 set); ``names`` is the fixed column order."""

    def __init__(self) -> None:
        options = re2.Options()
        options.log_errors = False
        self._set = re2.Set.SearchSet(options)
        for p in PATTERNS.values():
            self._set.Add(p)
        self._set.Compile()
        self._order = tuple(PATTERNS)
        self._terms = compile_pattern(SECURITY_TERMS)
        self.names: tuple[str, ...] = (*PATTERNS, "tainted_sink", "security_terms", "security_terms_2")

    def __call__(self, text: str) -> list[str]:
        order = self._order
        hits = [order[i] for i in sorted(self._set.Match(text) or ())]  # None when nothing matches
        if "request_input" in hits and any(s in hits for s in _SINKS):
            hits.append("tainted_sink")
        m = self._terms.search(text)
        if m is not None:
            hits.append("security_terms")
            if self._terms.search(text, m.end()) is not None:
                hits.append("security_terms_2")
        return hits
