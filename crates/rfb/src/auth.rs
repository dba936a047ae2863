//! VNC Authentication (RFC 6143 §7.2.2): the challenge encrypted with DES, the password as key.

use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt as _, KeyInit as _};

/// The response to a 16-byte challenge. The key is the password's first 8 bytes (padded with
/// zeros), each byte's bits reversed — a quirk of the original VNC implementation that every
/// server expects.
pub(crate) fn vnc_response(password: &[u8], challenge: &[u8; 16]) -> [u8; 16] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    let cipher = des::Des::new(&GenericArray::from(key));
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use des::cipher::BlockDecrypt as _;

    #[test]
    fn the_response_decrypts_to_the_challenge_with_the_bit_reversed_key() {
        let challenge: [u8; 16] = *b"0123456789abcdef";
        let response = vnc_response(b"secret-longer-than-8", &challenge);
        assert_ne!(response, challenge);
        let key: Vec<u8> = b"secret-l".iter().map(|b| b.reverse_bits()).collect();
        let cipher = des::Des::new_from_slice(&key).expect("an 8-byte key");
        let mut back = response;
        for block in back.chunks_exact_mut(8) {
            cipher.decrypt_block(GenericArray::from_mut_slice(block));
        }
        assert_eq!(back, challenge);
        // Only the first 8 bytes count, as in every VNC server.
        assert_eq!(vnc_response(b"secret-l", &challenge), response);
    }
}
