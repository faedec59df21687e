/*
 * PBKDF2-HMAC-SHA-256 with a 32-byte output (one block, RFC 8018 §5.2), the SaltedPassword of
 * SCRAM-SHA-256 (RFC 7677), on libuv's thread pool.
 *
 * OpenSSL's PKCS5_PBKDF2_HMAC re-initialises an HMAC context through its provider layer at every
 * iteration; here the key's inner and outer pad states are hashed once, and each iteration is exactly
 * two SHA-256 compressions of a block whose padding never changes. Same bytes, about half the time
 * (bench/pbkdf2.mjs). The compression is OpenSSL's own, from the node binary.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DK_LEN SHA256_DIGEST_LENGTH

static void put_state(unsigned char *out, const SHA256_CTX *c) {
  for (int i = 0; i < 8; i++) {
    uint32_t w = c->h[i];
    out[4 * i] = (unsigned char)(w >> 24);
    out[4 * i + 1] = (unsigned char)(w >> 16);
    out[4 * i + 2] = (unsigned char)(w >> 8);
    out[4 * i + 3] = (unsigned char)w;
  }
}

static void pbkdf2_sha256(const unsigned char *pw, size_t pw_len, const unsigned char *salt, size_t salt_len,
                          uint32_t iterations, unsigned char dk[DK_LEN]) {
  unsigned char key[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK];
  SHA256_CTX inner, outer, c;
  if (pw_len > SHA256_CBLOCK) SHA256(pw, pw_len, key); /* RFC 2104: a longer key is hashed first */
  else memcpy(key, pw, pw_len);
  for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = key[i] ^ 0x36;
  SHA256_Init(&inner);
  SHA256_Update(&inner, pad, SHA256_CBLOCK);
  for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = key[i] ^ 0x5c;
  SHA256_Init(&outer);
  SHA256_Update(&outer, pad, SHA256_CBLOCK);

  /* U1 = HMAC(P, S || INT(1)) */
  static const unsigned char block_index[4] = {0, 0, 0, 1};
  unsigned char u[SHA256_CBLOCK] = {0};
  c = inner;
  SHA256_Update(&c, salt, salt_len);
  SHA256_Update(&c, block_index, sizeof block_index);
  SHA256_Final(u, &c);
  c = outer;
  SHA256_Update(&c, u, DK_LEN);
  SHA256_Final(u, &c);
  memcpy(dk, u, DK_LEN);

  /* U2..Uc: the message is always one 32-byte digest after a 64-byte pad, so its padding is fixed:
   * 0x80, zeros, and the length 96 bytes = 768 bits = 0x0300 in the last two bytes. */
  u[DK_LEN] = 0x80;
  u[SHA256_CBLOCK - 2] = 0x03;
  for (uint32_t j = 1; j < iterations; j++) {
    c = inner;
    SHA256_Transform(&c, u);
    put_state(u, &c);
    c = outer;
    SHA256_Transform(&c, u);
    put_state(u, &c);
    for (int i = 0; i < DK_LEN; i++) dk[i] ^= u[i];
  }
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(u, sizeof u);
  OPENSSL_cleanse(&inner, sizeof inner);
  OPENSSL_cleanse(&outer, sizeof outer);
  OPENSSL_cleanse(&c, sizeof c);
}

typedef struct {
  napi_async_work work;
  napi_ref callback;
  unsigned char *input; /* password, then salt: copies, so JS may reuse its buffers meanwhile */
  size_t pw_len, salt_len;
  uint32_t iterations;
  unsigned char dk[DK_LEN];
} Job;

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  pbkdf2_sha256(job->input, job->pw_len, job->input + job->pw_len, job->salt_len, job->iterations, job->dk);
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value callback, global, argv[2];
  napi_get_reference_value(env, job->callback, &callback);
  napi_get_global(env, &global);
  if (status == napi_ok) {
    void *out;
    napi_get_null(env, &argv[0]);
    napi_create_buffer_copy(env, DK_LEN, job->dk, &out, &argv[1]);
  } else {
    napi_value message;
    napi_create_string_utf8(env, "pbkdf2 was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &argv[0]);
    napi_get_undefined(env, &argv[1]);
  }
  OPENSSL_cleanse(job->input, job->pw_len + job->salt_len);
  OPENSSL_cleanse(job->dk, DK_LEN);
  free(job->input);
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  free(job);
  napi_call_function(env, global, callback, 2, argv, NULL);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* pbkdf2Sha256(password: Buffer, salt: Buffer, iterations: number, callback(err, key: Buffer)) */
static napi_value Pbkdf2Sha256(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4) return fail(env, "pbkdf2Sha256 takes 4 arguments");
  bool is_buffer;
  void *pw, *salt;
  size_t pw_len, salt_len;
  double iterations;
  napi_valuetype type;
  if (napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[0], &pw, &pw_len) != napi_ok)
    return fail(env, "password must be a Buffer");
  if (napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[1], &salt, &salt_len) != napi_ok)
    return fail(env, "salt must be a Buffer");
  /* What node:crypto's pbkdf2 accepts: an integer from 1 to 2^31 - 1. */
  if (napi_typeof(env, argv[2], &type) != napi_ok || type != napi_number || napi_get_value_double(env, argv[2], &iterations) != napi_ok ||
      !(iterations >= 1 && iterations <= 2147483647.0) || iterations != (double)(uint32_t)iterations)
    return fail(env, "iterations must be an integer from 1 to 2147483647");
  if (napi_typeof(env, argv[3], &type) != napi_ok || type != napi_function) return fail(env, "callback must be a function");

  Job *job = calloc(1, sizeof *job);
  unsigned char *input = malloc(pw_len + salt_len + 1);
  if (job == NULL || input == NULL) {
    free(job);
    free(input);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  memcpy(input, pw, pw_len);
  memcpy(input + pw_len, salt, salt_len);
  job->input = input;
  job->pw_len = pw_len;
  job->salt_len = salt_len;
  job->iterations = (uint32_t)iterations;
  napi_value name;
  if (napi_create_string_utf8(env, "vigil:pbkdf2", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &job->callback) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    if (job->work != NULL) napi_delete_async_work(env, job->work);
    if (job->callback != NULL) napi_delete_reference(env, job->callback);
    OPENSSL_cleanse(input, pw_len + salt_len);
    free(input);
    free(job);
    napi_throw_error(env, NULL, "pbkdf2Sha256 could not be queued");
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "pbkdf2Sha256", NAPI_AUTO_LENGTH, Pbkdf2Sha256, NULL, &fn);
  napi_set_named_property(env, exports, "pbkdf2Sha256", fn);
  return exports;
}
