"""Fills a copy of a migrated mailtls store with the rollups of 10,000 clients and about
10,000,000 sessions (1,000 per client over 90 days; a quarter each at TLS 1.0 only, TLS 1.3,
downgraded from TLS 1.2, plaintext; a third annotated). The sessions table is left empty:
`mailtls clients` and `mailtls report` never read it.

    python3 bench/inventory_rollups.py SOURCE.db BIG.db   # SOURCE: any store made by mailtls
"""
import sqlite3, sys, random, datetime
src, dst = sys.argv[1], sys.argv[2]
s = sqlite3.connect(src); d = sqlite3.connect(dst)
s.backup(d); s.close()
for t in ["client_attributes", "client_days", "client_annotations", "clients", "sessions"]:
    d.execute(f"DELETE FROM {t}")
random.seed(7)
start = datetime.date(2026, 9, 1)
days = [(start + datetime.timedelta(days=i)).isoformat() for i in range(90)]
verdict_mix = [(0x0301, 0x0301, 0x0301, 0, 0), (0x0304, 0x0304, 0x0304, 0, 0), (0x0303, 0x0301, 0x0303, 5, 0), (None, None, None, 0, 1000)]
for cid in range(1, 10001):
    hi, lo, hn, down, plain = random.choice(verdict_mix)
    addr = f"10.{cid // 65536}.{(cid // 256) % 256}.{cid % 256}"
    d.execute("INSERT INTO clients VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
              (cid, addr, f"user{cid}", f"t10i0{cid:05d}_c491f621fb4c_195413a0cc0f" if hi else "", f"device {cid % 37}",
               "gateway", days[0] + "T00:00:00.000Z", days[-1] + "T23:00:00.000Z", 1000, hi, lo, hn, down, plain))
    rows = []
    for i, day in enumerate(days):
        n = 11 if i < 10 else 11 if i % 9 else 12
        rows.append((cid, day, n, n if lo and lo < 0x0303 else 0, n if plain else 0, 0))
    d.executemany("INSERT INTO client_days VALUES (?,?,?,?,?,?)", rows)
    attrs = [(cid, "listener", "imaps-legacy", days[0]), (cid, "upstream", "exo", days[0]), (cid, "source", "gateway", days[0]),
             (cid, "login", f"user{cid}", days[0]), (cid, "sni", "mail.example.com", days[0])]
    if lo:
        attrs.append((cid, "negotiated", {0x0301: "TLSv1.0", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}[lo], days[0]))
        attrs.append((cid, "suite", "ECDHE-RSA-AES128-SHA", days[0]))
    d.executemany("INSERT INTO client_attributes VALUES (?,?,?,?)", attrs)
    if cid % 3 == 0:
        d.execute("INSERT INTO client_annotations VALUES ('client', ?, ?, 'printer', NULL, ?)", (str(cid), f"team {cid % 20}", days[0] + "T00:00:00.000Z"))
d.commit()
print(d.execute("SELECT count(*), sum(sessions) FROM clients").fetchone(), d.execute("SELECT count(*), sum(sessions) FROM client_days").fetchone())
