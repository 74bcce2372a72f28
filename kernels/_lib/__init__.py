"""One copy of what every kernel package shares: ``validation`` (argument checks and the one device
rule), ``launch`` (interpreter/autotune switch, the allocation seam, launch records), ``device`` (SM
counts, per-arch limits) and ``aot`` (compile cases and the JIT-specialisation helper)."""
