//! A `jsonwebtoken` crypto provider on `ring`, the crypto library rustls already brings into
//! this build (jsonwebtoken's own backends are aws-lc-rs, a second C crypto stack, or a set of
//! RustCrypto crates). It verifies HS256, RS256 and ES256 signatures — the algorithms the
//! gateway accepts — and signs nothing: the gateway only checks tokens.
//!
//! jsonwebtoken does the rest: base64, the header, matching the header's `alg` against the
//! allowed one and the key's family, and the claim checks.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{self as sig, UnparsedPublicKey};

/// The provider; installed once per process by [`install`].
static PROVIDER: CryptoProvider =
    CryptoProvider { signer_factory: no_signer, verifier_factory: verifier, key_utils: KeyUtils::new_unimplemented() };

/// Makes the ring provider jsonwebtoken's process default (a second call changes nothing).
pub fn install() {
    // Err only when a provider is installed already: this one, from an earlier call.
    let _ = PROVIDER.install_default();
}

fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    Err(ErrorKind::Provider("the gateway verifies tokens; it does not sign them".into()).into())
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let (family, check) = match algorithm {
        Algorithm::HS256 => (AlgorithmFamily::Hmac, Check::Hmac),
        Algorithm::RS256 => (AlgorithmFamily::Rsa, Check::Rsa(&sig::RSA_PKCS1_2048_8192_SHA256)),
        Algorithm::ES256 => (AlgorithmFamily::Ec, Check::Ec(&sig::ECDSA_P256_SHA256_FIXED)),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier { algorithm: *algorithm, check, key: key.clone() }))
}

/// How a signature of one algorithm is checked.
#[derive(Clone, Copy)]
enum Check {
    Hmac,
    Rsa(&'static sig::RsaParameters),
    Ec(&'static sig::EcdsaVerificationAlgorithm),
}

struct RingVerifier {
    algorithm: Algorithm,
    check: Check,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), SignatureError> {
        let checked = match (self.check, self.key.kind()) {
            (Check::Hmac, DecodingKeyKind::SecretOrDer(secret)) => {
                ring::hmac::verify(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), message, signature)
            }
            // PKCS#1 RSAPublicKey DER, as jsonwebtoken extracts it from a PEM.
            (Check::Rsa(params), DecodingKeyKind::SecretOrDer(der)) => {
                UnparsedPublicKey::new(params, der).verify(message, signature)
            }
            (Check::Rsa(params), DecodingKeyKind::RsaModulusExponent { n, e }) => {
                sig::RsaPublicKeyComponents { n, e }.verify(params, message, signature)
            }
            // The uncompressed curve point, as jsonwebtoken extracts it from a PEM.
            (Check::Ec(params), DecodingKeyKind::SecretOrDer(point)) => {
                UnparsedPublicKey::new(params, point).verify(message, signature)
            }
            _ => return Err(SignatureError::new()),
        };
        checked.map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}
