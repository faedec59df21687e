{
  "targets": [
    {
      "target_name": "vigil_pbkdf2",
      "sources": ["pbkdf2.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
