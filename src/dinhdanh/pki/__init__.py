"""The platform's signing keys and certificates, shared by every hierarchy it runs: the ICAO
eMRTD PKI of the chip cards (``cards.pki``: CSCA, Document Signers, Master List Signer) and the
document-signing CA of the result documents (``documents.ca``). Keys are sealed by the vault,
signing goes through a :class:`~dinhdanh.pki.signers.Signer`, every use of a key is logged in
the transaction of what it signed, and each CA publishes CRLs (``pki.crls``)."""
