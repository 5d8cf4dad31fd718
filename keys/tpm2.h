/* The master key sealed to the host's TPM2, as systemd-creds seals credentials. Touches key
 * material: the unsealed key comes back in a kura_secbuf; every TPM2B that held it is wiped. */
#pragma once

#include "secbuf.h"

#define KURA_TPM2_TCTI_DEFAULT "device:/dev/tpmrm0"
#define KURA_TPM2_TCTI_MAX 255u

/*
 * Seal 32 new random bytes to the TPM reached through tcti (a tpm2-tss TCTI string such as
 * "device:/dev/tpmrm0" or "swtpm:host=127.0.0.1,port=2321"; NULL: the device) and write the
 * blob file at path: the TCTI, the sealed object's public and private parts and a checksum,
 * whole or not at all, mode 0400, never over anything already there (-EEXIST).
 *
 * The object lives under a primary key derived afresh each time from the owner hierarchy's
 * seed and a fixed template (nothing of it is stored), so only this TPM can load it; the key
 * crosses the bus only inside a salted HMAC session's parameter encryption. No PCR policy:
 * any root process on this host that can reach the TPM can unseal it.
 *
 * -ENODEV no TPM at tcti; -EACCES the TPM's owner hierarchy has a password; -EINVAL a TCTI that is
 * not device, swtpm or mssim (tctildr would also run a command or load any library named), or
 * longer than 255 bytes; -EIO the TPM failed a command; -errno from writing the file. The key goes
 * to *ret when ret is not NULL.
 */
int kura_tpm2_seal_new(const char *path, const char *tcti, struct kura_secbuf **ret);

/*
 * Unseal the key in the blob file at path, through the TCTI recorded in it. The file must be
 * private as a key file is (regular, not a symlink, the caller's, no group or other access).
 *   -EBADMSG       the file is damaged (format, lengths or checksum, or a TCTI not allowed)
 *   -ENODEV        no TPM at the recorded TCTI
 *   -EACCES        the TPM's owner hierarchy has a password (it has been given one since)
 *   -EKEYREJECTED  the TPM refuses the blob: it was sealed to another TPM (or this TPM's
 *                  owner hierarchy was cleared since)
 *   -EIO           any other TPM failure
 * and the key file refusals of kura_master_load_file (-ELOOP, -EMEDIUMTYPE, -EPERM, -ENOENT...).
 * When ret_tcti is not NULL it receives the recorded TCTI (malloc'd) once the blob is read
 * whole, also when the TPM then fails or refuses, so that a message can name it.
 */
int kura_tpm2_unseal(const char *path, struct kura_secbuf **ret, char **ret_tcti);

/* Load what talking to a TPM takes (tpm2-tss's TCTI modules) now, while the process may still
 * map code: kurad's custody process calls it before it locks itself down, so that a later
 * `key rekey --tpm2` finds them loaded. Best effort: 0, or -ENOENT if a module is missing. */
int kura_tpm2_preload(void);

/* From now on only a TPM device (device:PATH) is reached: the TCTIs that talk TCP (swtpm,
 * mssim) are -EPROTONOSUPPORT. For kurad's custody process, which makes no connection. */
void kura_tpm2_devices_only(void);
