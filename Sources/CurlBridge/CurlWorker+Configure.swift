import CCurl
import Upstream

extension CurlWorker {
    /// Sets every option that can differ between transfers (a reused handle still holds
    /// the previous transfer's); returns the first failure.
    func configure(_ transfer: CurlTransfer, _ request: TransferRequest, _ easy: EasyHandle) -> CURLcode {
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var first = CURLE_OK
        func check(_ code: CURLcode) {
            if first.isOK && !code.isOK { first = code }
        }
        easy.errorBuffer[0] = 0
        check(easy.set(.privateData, context))
        check(easy.set(.writeData, context))
        check(easy.set(.headerData, context))
        check(easy.set(.readData, context))
        configureConnection(
            easy, url: request.url, connectTimeoutMilliseconds: request.connectTimeoutMilliseconds,
            tls: request.tls ?? UpstreamTLS(), check)

        // UPLOAD first: setting it also resets the method, which NOBODY and CUSTOMREQUEST then refine.
        let isHead = request.method == "HEAD"
        var customMethod: String?
        switch (isHead, request.body) {
        case (true, _):
            check(easy.set(.upload, 0))
            check(easy.set(.noBody, 1))
            transfer.onWorker.discardsRequestBody = true
        case (false, .none):
            check(easy.set(.upload, 0))
            check(easy.set(.noBody, 0))
            if request.method != "GET" { customMethod = request.method }
            transfer.onWorker.discardsRequestBody = true
        case (false, .length(let length)):
            check(easy.set(.upload, 1))
            check(easy.set(.noBody, 0))
            check(easy.set(.inFileSizeLarge, max(0, length)))
            if request.method != "PUT" { customMethod = request.method }
        case (false, .chunked):
            check(easy.set(.upload, 1))
            check(easy.set(.noBody, 0))
            check(easy.set(.inFileSizeLarge, -1))
            if request.method != "PUT" { customMethod = request.method }
        }
        check(easy.set(.customRequest, customMethod))

        // curl adds `Expect: 100-continue` only to uploads; without one the blank is dead
        // weight that curl's header checks would scan on every lookup.
        guard let list = CurlHeaderList.make(request.headers, blankExpect: !transfer.onWorker.discardsRequestBody)
        else {
            return CURLE_OUT_OF_MEMORY
        }
        transfer.onWorker.headerList = list
        check(easy.set(.httpHeader, list))
        return first
    }

    /// Where and how to connect: the options an exchange and a tunnel share, so both reach an
    /// upstream the same way (TCP, and TLS for an `https://` URL).
    func configureConnection(
        _ easy: EasyHandle, url: String, connectTimeoutMilliseconds: Int, tls: UpstreamTLS,
        _ check: (CURLcode) -> Void
    ) {
        check(easy.set(.url, url))
        // 0 is curl's default (300 s).
        check(easy.set(.connectTimeoutMilliseconds, max(0, connectTimeoutMilliseconds)))
        configureTLS(tls, easy, check)
    }

    /// Every TLS option, on every transfer: handles are reused across upstreams, so one left
    /// unset would carry the previous upstream's CA, verification or client certificate.
    /// curl pools a connection with its TLS settings (CA file and directory, verification,
    /// client certificate) and reuses it only for a transfer with the same ones.
    private func configureTLS(_ tls: UpstreamTLS, _ easy: EasyHandle, _ check: (CURLcode) -> Void) {
        let system = CurlGlobal.defaultCATrust
        if let caFile = tls.caFile {
            // Only these CAs: no CA directory beside the file.
            check(easy.set(.caInfo, caFile))
            check(easy.set(.caPath, nil))
        } else {
            check(easy.set(.caInfo, system.file))
            check(easy.set(.caPath, system.directory))
        }
        check(easy.set(.sslVerifyPeer, tls.verify ? 1 : 0))
        check(easy.set(.sslVerifyHost, tls.verify ? 2 : 0))
        check(easy.set(.sslCert, tls.clientCertificate))
        check(easy.set(.sslKey, tls.clientKey))
    }
}
