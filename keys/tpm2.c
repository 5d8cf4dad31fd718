/* Sealing the master key to a TPM2 and unsealing it (tpm2-tss ESYS), after systemd's
 * tpm2-util.c. Touches key material: it passes through TPM2B structures, wiped after use. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>
#include <tss2/tss2_tctildr.h>

#include "master.h"
#include "tpm2.h"

/*
 * The blob file:
 *   "KURATPM2" | version (1) | TCTI length (1 byte) | TCTI | TPM2B_PUBLIC | TPM2B_PRIVATE |
 *   BLAKE2b-256 of all that
 * The checksum tells a damaged file from one the TPM refuses (sealed elsewhere); it is no
 * defence against an attacker, who gains nothing by forging it: the TPM checks the blob itself.
 */
static const char magic[8] = { 'K', 'U', 'R', 'A', 'T', 'P', 'M', '2' };
#define BLOB_VERSION 1
#define BLOB_SUM 32u
#define BLOB_MAX                                                                                   \
	(sizeof(magic) + 2 + KURA_TPM2_TCTI_MAX + sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE) +   \
		BLOB_SUM)

struct tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR primary;
	ESYS_TR session;
};

static void tpm_close(struct tpm *t)
{
	if (t->esys) {
		if (t->session != ESYS_TR_NONE)
			(void)Esys_FlushContext(t->esys, t->session);
		if (t->primary != ESYS_TR_NONE)
			(void)Esys_FlushContext(t->esys, t->primary);
		Esys_Finalize(&t->esys);
	}
	if (t->tcti)
		Tss2_TctiLdr_Finalize(&t->tcti);
}

/* The SRK template systemd (and the TCG's provisioning guidance) uses: ECC P-256, a restricted
 * decryption key. The TPM derives the same key from the owner seed each time, so it need not be
 * stored, and a blob sealed under it loads on no other TPM. */
static const TPM2B_PUBLIC primary_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
			TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
			TPMA_OBJECT_NODA,
		.parameters.eccDetail = {
			.symmetric = {
				.algorithm = TPM2_ALG_AES,
				.keyBits.aes = 128,
				.mode.aes = TPM2_ALG_CFB,
			},
			.scheme.scheme = TPM2_ALG_NULL,
			.curveID = TPM2_ECC_NIST_P256,
			.kdf.scheme = TPM2_ALG_NULL,
		},
	},
};

/* The format-one error number of a TPM's rc (whatever handle, session or parameter it names),
 * or 0 for anything else: another layer's, or a warning. */
static TSS2_RC fmt1(TSS2_RC rc)
{
	if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER || !(rc & TPM2_RC_FMT1))
		return 0;
	return rc & (TPM2_RC_FMT1 | 0x3f);
}

/*
 * Reach the TPM, make the primary key, and start a session salted with it whose parameter
 * encryption (AES-128-CFB) covers the key on its way in (Create) and out (Unseal): someone on
 * the bus (or the swtpm socket) sees only ciphertext.
 */
static int tpm_open(const char *tcti, struct tpm *t)
{
	static const TPMT_SYM_DEF sym = {
		.algorithm = TPM2_ALG_AES,
		.keyBits.aes = 128,
		.mode.aes = TPM2_ALG_CFB,
	};
	TPM2B_SENSITIVE_CREATE none = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TSS2_RC rc;

	*t = (struct tpm){ .primary = ESYS_TR_NONE, .session = ESYS_TR_NONE };
	/* tpm2-tss logs its errors to stderr unless told otherwise; we report them ourselves.
	 * An operator's own TSS2_LOG (for debugging) is left as it is. */
	(void)setenv("TSS2_LOG", "all+none", 0);
	if (Tss2_TctiLdr_Initialize(tcti, &t->tcti) != TSS2_RC_SUCCESS) {
		t->tcti = NULL;
		return -ENODEV;
	}
	if (Esys_Initialize(&t->esys, t->tcti, NULL) != TSS2_RC_SUCCESS) {
		t->esys = NULL;
		return -ENODEV;
	}
	rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		ESYS_TR_NONE, &none, &primary_template, &outside, &pcrs, &t->primary, NULL, NULL,
		NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		t->primary = ESYS_TR_NONE;
		/* The owner hierarchy has a password, which kura does not take. */
		return fmt1(rc) == TPM2_RC_BAD_AUTH || fmt1(rc) == TPM2_RC_AUTH_FAIL ? -EACCES :
										       -EIO;
	}
	if (Esys_StartAuthSession(t->esys, t->primary, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		    ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256,
		    &t->session) != TSS2_RC_SUCCESS) {
		t->session = ESYS_TR_NONE;
		return -EIO;
	}
	if (Esys_TRSess_SetAttributes(t->esys, t->session,
		    TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION,
		    0xff) != TSS2_RC_SUCCESS)
		return -EIO;
	return 0;
}

/*
 * Only the TCTIs that talk to a TPM: tctildr also takes "cmd:..." (which runs a shell command)
 * and the path of any shared library to load, and a TCTI comes from the blob file and, through
 * kurad's admin API, from a request.
 */
static bool devices_only;

void kura_tpm2_devices_only(void)
{
	devices_only = true;
}

static int check_tcti(const char *tcti)
{
	static const char *const allowed[] = { "device", "swtpm", "mssim" };
	size_t n = strlen(tcti);

	if (n == 0 || n > KURA_TPM2_TCTI_MAX)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
		size_t k = strlen(allowed[i]);

		if (strncmp(tcti, allowed[i], k) == 0 && (tcti[k] == '\0' || tcti[k] == ':'))
			return devices_only && i != 0 ? -EPROTONOSUPPORT : 0;
	}
	return -EINVAL;
}

/* The blob file's bytes for tcti and the sealed object. */
static int blob_encode(const char *tcti, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv,
	uint8_t *buf, size_t size, size_t *ret_len)
{
	size_t off = 0, n = strlen(tcti);

	memcpy(buf, magic, sizeof(magic));
	off = sizeof(magic);
	buf[off++] = BLOB_VERSION;
	buf[off++] = (uint8_t)n;
	memcpy(buf + off, tcti, n);
	off += n;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, size - BLOB_SUM, &off) != TSS2_RC_SUCCESS ||
		Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, size - BLOB_SUM, &off) != TSS2_RC_SUCCESS)
		return -EIO;
	crypto_generichash(buf + off, BLOB_SUM, buf, off, NULL, 0);
	*ret_len = off + BLOB_SUM;
	return 0;
}

/* The other way; -EBADMSG for anything but a whole, well-formed blob. */
static int blob_decode(const uint8_t *buf, size_t len, char **ret_tcti, TPM2B_PUBLIC *pub,
	TPM2B_PRIVATE *priv)
{
	uint8_t sum[BLOB_SUM];
	size_t off, n, body;
	char *tcti;

	if (len < sizeof(magic) + 2 + BLOB_SUM || memcmp(buf, magic, sizeof(magic)) != 0 ||
		buf[sizeof(magic)] != BLOB_VERSION)
		return -EBADMSG;
	body = len - BLOB_SUM;
	crypto_generichash(sum, sizeof(sum), buf, body, NULL, 0);
	if (sodium_memcmp(sum, buf + body, BLOB_SUM) != 0)
		return -EBADMSG;
	n = buf[sizeof(magic) + 1];
	off = sizeof(magic) + 2;
	if (n == 0 || off + n > body || memchr(buf + off, '\0', n))
		return -EBADMSG;
	tcti = strndup((const char *)buf + off, n);
	if (!tcti)
		return -ENOMEM;
	off += n;
	*pub = (TPM2B_PUBLIC){ 0 };
	*priv = (TPM2B_PRIVATE){ 0 };
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, body, &off, pub) != TSS2_RC_SUCCESS ||
		Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, body, &off, priv) != TSS2_RC_SUCCESS ||
		off != body || pub->publicArea.type != TPM2_ALG_KEYEDHASH) {
		free(tcti);
		return -EBADMSG;
	}
	*ret_tcti = tcti;
	return 0;
}

int kura_tpm2_seal_new(const char *path, const char *tcti, struct kura_secbuf **ret)
{
	_cleanup_secbuf_ struct kura_secbuf *key = NULL;
	TPM2B_SENSITIVE_CREATE in = { 0 };
	TPM2B_PUBLIC tmpl = {
		.publicArea = {
			.type = TPM2_ALG_KEYEDHASH,
			.nameAlg = TPM2_ALG_SHA256,
			/* No PCR policy yet: the empty auth value, given through the HMAC
			 * session, unseals it. */
			.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				TPMA_OBJECT_USERWITHAUTH,
			.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
		},
	};
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	struct kura_keyfile f;
	uint8_t blob[BLOB_MAX];
	size_t len = 0;
	struct tpm t;
	TSS2_RC rc;
	int r;

	if (!tcti)
		tcti = KURA_TPM2_TCTI_DEFAULT;
	r = check_tcti(tcti);
	if (r < 0)
		return r;
	/* The file first: a path that cannot take it is refused before the TPM is asked. */
	r = kura_keyfile_open(path, &f);
	if (r < 0)
		return r;
	r = kura_secbuf_random(KURA_MASTER_KEY_BYTES, &key);
	if (r == 0)
		r = tpm_open(tcti, &t);
	else
		t = (struct tpm){ .primary = ESYS_TR_NONE, .session = ESYS_TR_NONE };
	if (r == 0) {
		in.sensitive.data.size = KURA_MASTER_KEY_BYTES;
		memcpy(in.sensitive.data.buffer, key->data, KURA_MASTER_KEY_BYTES);
		rc = Esys_Create(t.esys, t.primary, t.session, ESYS_TR_NONE, ESYS_TR_NONE, &in,
			&tmpl, &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
		sodium_memzero(&in, sizeof(in));
		r = rc == TSS2_RC_SUCCESS ? 0 : -EIO;
	}
	tpm_close(&t);
	if (r == 0)
		r = blob_encode(tcti, pub, priv, blob, sizeof(blob), &len);
	Esys_Free(priv);
	Esys_Free(pub);
	if (r < 0) {
		kura_keyfile_abort(&f);
		return r;
	}
	r = kura_keyfile_commit(&f, blob, len);
	if (r < 0)
		return r;
	if (ret)
		*ret = TAKE_PTR(key);
	return 0;
}

/* Is rc the TPM refusing the object itself (its integrity, its binding to the parent), rather
 * than failing? Those are format-one codes, whatever parameter they name. */
static bool refused_blob(TSS2_RC rc)
{
	TSS2_RC e = fmt1(rc);

	return e == TPM2_RC_INTEGRITY || e == TPM2_RC_BINDING || e == TPM2_RC_KEY ||
		e == TPM2_RC_SIZE || e == TPM2_RC_VALUE;
}

/* The response parameters of the last command, which ESYS decrypted in place: the unsealed
 * key lies there until the next command overwrites it. */
static void wipe_response(ESYS_CONTEXT *esys)
{
	TSS2_SYS_CONTEXT *sys = NULL;
	const uint8_t *rp = NULL;
	size_t n = 0;

	if (Esys_GetSysContext(esys, &sys) == TSS2_RC_SUCCESS && sys &&
		Tss2_Sys_GetRpBuffer(sys, &n, &rp) == TSS2_RC_SUCCESS && rp && n)
		sodium_memzero((void *)rp, n);
}

int kura_tpm2_unseal(const char *path, struct kura_secbuf **ret, char **ret_tcti)
{
	_cleanup_secbuf_ struct kura_secbuf *file = NULL, *key = NULL;
	_cleanup_free_ char *tcti = NULL;
	TPM2B_SENSITIVE_DATA *out = NULL;
	TPM2B_PRIVATE priv;
	TPM2B_PUBLIC pub;
	ESYS_TR obj = ESYS_TR_NONE;
	struct tpm t;
	TSS2_RC rc;
	int r;

	r = kura_master_read_private(path, BLOB_MAX, &file);
	if (r == -EFBIG)
		return -EBADMSG;
	if (r < 0)
		return r;
	r = blob_decode(file->data, file->len, &tcti, &pub, &priv);
	if (r < 0)
		return r;
	if (check_tcti(tcti) < 0)
		return -EBADMSG; /* and not named: it may be anything */
	r = tpm_open(tcti, &t);
	if (r == 0) {
		rc = Esys_Load(t.esys, t.primary, t.session, ESYS_TR_NONE, ESYS_TR_NONE, &priv,
			&pub, &obj);
		if (rc != TSS2_RC_SUCCESS) {
			obj = ESYS_TR_NONE;
			r = refused_blob(rc) ? -EKEYREJECTED : -EIO;
		}
	}
	if (r == 0) {
		rc = Esys_Unseal(t.esys, obj, t.session, ESYS_TR_NONE, ESYS_TR_NONE, &out);
		wipe_response(t.esys);
		if (rc != TSS2_RC_SUCCESS)
			r = -EIO;
		else if (out->size != KURA_MASTER_KEY_BYTES)
			r = -EBADMSG;
		else
			r = kura_secbuf_from(out->buffer, out->size, &key);
		if (out) {
			sodium_memzero(out, sizeof(*out));
			Esys_Free(out);
		}
	}
	if (obj != ESYS_TR_NONE)
		(void)Esys_FlushContext(t.esys, obj);
	tpm_close(&t);
	if (ret_tcti)
		*ret_tcti = TAKE_PTR(tcti);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(key);
	return 0;
}

int kura_tpm2_preload(void)
{
	static const char *const modules[] = { "libtss2-tcti-device.so.0",
		"libtss2-tcti-swtpm.so.0", "libtss2-tcti-mssim.so.0" };
	int r = 0;

	(void)setenv("TSS2_LOG", "all+none", 0);
	/* Kept for good (RTLD_NODELETE): the loader's own dlopen then maps nothing new, and its
	 * dlclose unmaps nothing. */
	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++)
		if (!dlopen(modules[i], RTLD_NOW | RTLD_NODELETE))
			r = -ENOENT;
	return r;
}
