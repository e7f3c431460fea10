"""Code-aware signals: what in a prompt's code makes it a security task even when the words do not say so.

Each signal is a named linear-time (RE2) pattern over the prompt; ``signals(text)`` returns the names that
fire. They are features for the engines (one binary column each), not rules: the trained model weighs them
against the words. Patterns run on callers' prompts, so they are RE2 like route ``match`` patterns.
"""

from __future__ import annotations

import re2

from gateway.routing.patterns import compile_pattern

_INPUT = (r"(request\.|req\.(query|body|params|headers|cookies)|\$_(GET|POST|COOKIE|REQUEST|SERVER)|getParameter|"
          r"r\.URL\.Query|FormValue|params\[|location\.(hash|search)|Request\.(Cookies|Query|Form)|\binput\(|"
          r"argv|\bread -p|os\.environ|getenv)")

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
                      r"AKIA[0-9A-Z]{16}|\bsk[-_](live_)?[A-Za-z0-9]{16,}|\bghp_[A-Za-z0-9]{20,}|-p[A-Za-z0-9!]{6,}\b",
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
    "file_from_input": r"(open|include|require|ServeFile|readFile|sendFile|fopen)\s*\([^)\n]*(\+|\$)",
    "archive_extract": r"\.extract(all)?\(|ZipFile|tarfile",
    "redirect_input": r"redirect\(\s*(req|request|params|\$_)",
    "xml_parser": r"DocumentBuilderFactory|XMLReader|SAXParser|etree\.(parse|fromstring)|libxml|simplexml_load",
    "cors_reflect": r"Access-Control-Allow-(Origin|Credentials)",
    "mass_assign": r"setattr\(\s*\w+\s*,\s*\w+\s*,|\.update_attributes\(params|permit!",
    "request_input": _INPUT,
}

# The vocabulary of security work, as stems (English, plus a few French/German/Spanish words). A prose request
# ("threat model our upload service") carries its task in these words; counted, so two or more weigh more.
SECURITY_TERMS = (r"(?i)\b(vulnerab|exploit|attack|attacker|malicious|injection|injectable|inject|xss|csrf|ssrf|xxe|"
                  r"idor|rce|cve|cvss|owasp|pentest|penetration|threat|stride|secur|insecure|harden|sanitiz|"
                  r"escap|privilege|escalat|bypass|spoof|tamper|phish|leak|exfiltrat|breach|audit|taint|"
                  r"untrusted|overflow|deserializ|gadget|forgery|smuggl|clickjack|traversal|replay|brute|"
                  r"credential|stuffing|mitm|man-in-the-middle|hijack|backdoor|malware|payload|sandbox|"
                  r"seccomp|secret|disclosure|red team|blast radius|abuse|safe against|abus|failles|sécurité|"
                  r"angreifer|sicherheit|seguridad|vulnerabilidad|ausnutz|adversar|hacker|compromis|break into)")

_SINKS = ("sql_built", "sql_format", "eval_exec", "template_injection", "shell_call", "deserialize",
          "file_from_input", "redirect_input", "dom_sink", "html_interp", "xml_parser")


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
