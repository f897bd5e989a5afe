"""What makes a password acceptable: long enough, not the username, not one everybody tries first.

Length beats composition rules (NIST SP 800-63B 3.1.1.2): no "one digit, one symbol", but a minimum
length and a refusal of the passwords that spraying tools try first."""

from __future__ import annotations

MIN_LENGTH = 10
MAX_LENGTH = 200

# The passwords that lead breach corpora and spraying lists, plus the obvious ones for a bank's staff.
# Compared case-insensitively, and also with trailing digits and symbols removed ("Password123!").
COMMON_PASSWORDS = frozenset({
    "123456", "123456789", "12345678", "1234567890", "password", "qwerty", "qwertyuiop", "111111", "1234567",
    "123123", "abc123", "password1", "iloveyou", "admin", "welcome", "letmein", "monkey", "dragon", "football",
    "baseball", "sunshine", "princess", "superman", "trustno1", "master", "shadow", "michael", "qazwsx",
    "1q2w3e4r", "1q2w3e4r5t", "zaq12wsx", "passw0rd", "p@ssw0rd", "p@ssword", "welcome1", "changeme",
    "change-me", "secret", "administrator", "root", "toor", "default", "guest", "login", "access", "starwars",
    "whatever", "asdfghjkl", "asdfgh", "zxcvbnm", "1qaz2wsx", "qwe123", "aa123456", "000000", "987654321",
    "summer", "winter", "spring", "autumn", "january", "february", "december", "monday", "friday",
    "bank", "banking", "branch", "branchaudit", "branch-audit", "audit", "auditor", "inspector", "compliance",
    "mysteryshopper", "shopper", "manager", "company", "office", "service", "customer", "teller", "cashier",
    "woaini", "woaini1314", "5201314", "1314520", "88888888", "66666666", "147258369", "a123456", "qq123456",
    "contraseña", "contrasena", "hola", "holahola", "tequiero", "españa", "espana", "barcelona", "madrid",
    "shanghai", "beijing", "china", "valencia", "password!", "letmein!", "temp", "temporary", "test", "testing",
})


def _core(password: str) -> str:
    """The password without the digits and symbols people add to satisfy rules ("Summer2026!" -> "summer")."""
    return password.lower().rstrip("0123456789!@#$%^&*.?_-+= ")


def password_problems(password: str, username: str) -> list[str]:
    """Why a new password is refused (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters")
    lowered = password.lower()
    name = username.strip().lower()
    if name and (lowered == name or (len(name) >= 3 and name in lowered)):
        problems.append("must not contain the username")
    if lowered in COMMON_PASSWORDS or _core(password) in COMMON_PASSWORDS or len(set(lowered)) <= 2:
        problems.append("is too common; choose a passphrase of several unrelated words")
    return problems
