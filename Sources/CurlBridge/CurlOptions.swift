import CCurl

// Typed curl options: each option kind can only reach the shim setter of its C
// argument type, so a long can never be passed where curl reads a pointer.

/// A `CURLOPT_*` whose argument is a C `long`.
struct LongOption {
    let raw: CURLoption
    static let noSignal = LongOption(raw: CURLOPT_NOSIGNAL)
    static let tcpNoDelay = LongOption(raw: CURLOPT_TCP_NODELAY)
    static let tcpKeepAlive = LongOption(raw: CURLOPT_TCP_KEEPALIVE)
    static let pathAsIs = LongOption(raw: CURLOPT_PATH_AS_IS)
    static let httpTransferDecoding = LongOption(raw: CURLOPT_HTTP_TRANSFER_DECODING)
    static let httpContentDecoding = LongOption(raw: CURLOPT_HTTP_CONTENT_DECODING)
    static let followLocation = LongOption(raw: CURLOPT_FOLLOWLOCATION)
    static let httpVersion = LongOption(raw: CURLOPT_HTTP_VERSION)
    static let connectTimeoutMilliseconds = LongOption(raw: CURLOPT_CONNECTTIMEOUT_MS)
    static let maxAgeConnection = LongOption(raw: CURLOPT_MAXAGE_CONN)
    static let upload = LongOption(raw: CURLOPT_UPLOAD)
    static let noBody = LongOption(raw: CURLOPT_NOBODY)
    static let forbidReuse = LongOption(raw: CURLOPT_FORBID_REUSE)
    static let bufferSize = LongOption(raw: CURLOPT_BUFFERSIZE)
    static let sslVerifyPeer = LongOption(raw: CURLOPT_SSL_VERIFYPEER)
    static let sslVerifyHost = LongOption(raw: CURLOPT_SSL_VERIFYHOST)
    static let caCacheTimeout = LongOption(raw: CURLOPT_CA_CACHE_TIMEOUT)
    static let connectOnly = LongOption(raw: CURLOPT_CONNECT_ONLY)
}

/// A `CURLOPT_*` whose argument is a `curl_off_t`.
struct OffOption {
    let raw: CURLoption
    static let inFileSizeLarge = OffOption(raw: CURLOPT_INFILESIZE_LARGE)
}

/// A `CURLOPT_*` whose argument is a C string (curl copies it).
struct StringOption {
    let raw: CURLoption
    static let url = StringOption(raw: CURLOPT_URL)
    static let customRequest = StringOption(raw: CURLOPT_CUSTOMREQUEST)
    static let protocols = StringOption(raw: CURLOPT_PROTOCOLS_STR)
    static let redirectProtocols = StringOption(raw: CURLOPT_REDIR_PROTOCOLS_STR)
    static let proxy = StringOption(raw: CURLOPT_PROXY)
    static let caInfo = StringOption(raw: CURLOPT_CAINFO)
    static let caPath = StringOption(raw: CURLOPT_CAPATH)
    static let sslCert = StringOption(raw: CURLOPT_SSLCERT)
    static let sslKey = StringOption(raw: CURLOPT_SSLKEY)
}

/// A `CURLOPT_*` whose argument is a pointer curl keeps (it must outlive the transfer).
struct PointerOption {
    let raw: CURLoption
    static let privateData = PointerOption(raw: CURLOPT_PRIVATE)
    static let errorBuffer = PointerOption(raw: CURLOPT_ERRORBUFFER)
    static let writeData = PointerOption(raw: CURLOPT_WRITEDATA)
    static let headerData = PointerOption(raw: CURLOPT_HEADERDATA)
    static let readData = PointerOption(raw: CURLOPT_READDATA)
    static let sockoptData = PointerOption(raw: CURLOPT_SOCKOPTDATA)
    static let closeSocketData = PointerOption(raw: CURLOPT_CLOSESOCKETDATA)
    /// A `CURLSH *` (a share object must outlive the handles using it).
    static let share = PointerOption(raw: CURLOPT_SHARE)
}

/// A `CURLOPT_*` whose argument is a `curl_slist *` curl keeps until the transfer is done.
struct ListOption {
    let raw: CURLoption
    static let httpHeader = ListOption(raw: CURLOPT_HTTPHEADER)
}

/// A write-shaped callback option (`curl_write_callback`).
struct WriteCallbackOption {
    let raw: CURLoption
    static let write = WriteCallbackOption(raw: CURLOPT_WRITEFUNCTION)
    static let header = WriteCallbackOption(raw: CURLOPT_HEADERFUNCTION)
}

/// A read callback option (`curl_read_callback`).
struct ReadCallbackOption {
    let raw: CURLoption
    static let read = ReadCallbackOption(raw: CURLOPT_READFUNCTION)
}

/// A socket-option callback option (`curl_sockopt_callback`).
struct SockoptCallbackOption {
    let raw: CURLoption
    static let sockopt = SockoptCallbackOption(raw: CURLOPT_SOCKOPTFUNCTION)
}

/// A close-socket callback option (`curl_closesocket_callback`).
struct CloseSocketCallbackOption {
    let raw: CURLoption
    static let closeSocket = CloseSocketCallbackOption(raw: CURLOPT_CLOSESOCKETFUNCTION)
}

/// A `CURLMOPT_*` whose argument is a pointer curl hands back to a callback.
struct MultiPointerOption {
    let raw: CURLMoption
    static let socketData = MultiPointerOption(raw: CURLMOPT_SOCKETDATA)
    static let timerData = MultiPointerOption(raw: CURLMOPT_TIMERDATA)
}

/// A `CURLMOPT_*` whose argument is a C `long`.
struct MultiLongOption {
    let raw: CURLMoption
    static let maxConnects = MultiLongOption(raw: CURLMOPT_MAXCONNECTS)
    static let maxHostConnections = MultiLongOption(raw: CURLMOPT_MAX_HOST_CONNECTIONS)
    static let maxTotalConnections = MultiLongOption(raw: CURLMOPT_MAX_TOTAL_CONNECTIONS)
}

/// An easy handle plus the error buffer curl writes into; owned by one worker thread.
struct EasyHandle {
    let raw: UnsafeMutableRawPointer
    let errorBuffer: UnsafeMutablePointer<CChar>

    static func make() -> EasyHandle? {
        guard let raw = curl_easy_init() else { return nil }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        buffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        return EasyHandle(raw: raw, errorBuffer: buffer)
    }

    /// Frees the handle and its buffer; the handle must not be in a multi.
    func destroy() {
        curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }

    /// The error buffer's text, or `fallback` when curl wrote none.
    func errorText(fallback: CURLcode) -> String {
        if errorBuffer[0] != 0 {
            return String(cString: errorBuffer)
        }
        return String(cString: curl_easy_strerror(fallback))
    }

    @discardableResult
    func set(_ option: LongOption, _ value: Int) -> CURLcode {
        ccurl_setopt_long(raw, option.raw, value)
    }

    @discardableResult
    func set(_ option: OffOption, _ value: Int64) -> CURLcode {
        ccurl_setopt_off(raw, option.raw, curl_off_t(value))
    }

    @discardableResult
    func set(_ option: StringOption, _ value: String) -> CURLcode {
        value.withCString { ccurl_setopt_str(raw, option.raw, $0) }
    }

    /// nil restores curl's default.
    @discardableResult
    func set(_ option: StringOption, _ value: String?) -> CURLcode {
        guard let value else { return ccurl_setopt_str(raw, option.raw, nil) }
        return set(option, value)
    }

    @discardableResult
    func set(_ option: PointerOption, _ value: UnsafeMutableRawPointer?) -> CURLcode {
        ccurl_setopt_ptr(raw, option.raw, value)
    }

    @discardableResult
    func set(_ option: ListOption, _ value: UnsafeMutablePointer<curl_slist>?) -> CURLcode {
        ccurl_setopt_ptr(raw, option.raw, value)
    }

    @discardableResult
    func set(_ option: WriteCallbackOption, _ value: curl_write_callback) -> CURLcode {
        ccurl_setopt_fn(raw, option.raw, value)
    }

    @discardableResult
    func set(_ option: ReadCallbackOption, _ value: curl_read_callback) -> CURLcode {
        ccurl_setopt_read_fn(raw, option.raw, value)
    }

    @discardableResult
    func set(_ option: SockoptCallbackOption, _ value: curl_sockopt_callback) -> CURLcode {
        ccurl_setopt_sockopt_fn(raw, option.raw, value)
    }

    @discardableResult
    func set(_ option: CloseSocketCallbackOption, _ value: curl_closesocket_callback) -> CURLcode {
        ccurl_setopt_closesocket_fn(raw, option.raw, value)
    }
}

extension CURLcode {
    var isOK: Bool { self == CURLE_OK }
}

/// curl's process-wide initialisation, run once before the first handle.
enum CurlGlobal {
    static let initialised: Bool = ccurl_global_init_default() == CURLE_OK

    /// The CA bundle and directory this libcurl trusts when a handle is left alone: its
    /// build's defaults (Debian's: /etc/ssl/certs/ca-certificates.crt and /etc/ssl/certs).
    /// Setting `CURLOPT_CAINFO` to NULL does not bring them back (it means no bundle at
    /// all), so a reused handle is given these strings again instead.
    static let defaultCATrust: (file: String?, directory: String?) = {
        _ = initialised
        guard let easy = curl_easy_init() else { return (nil, nil) }
        defer { curl_easy_cleanup(easy) }
        func info(_ what: CURLINFO) -> String? {
            var pointer: UnsafeMutableRawPointer?
            guard ccurl_getinfo_ptr(easy, what, &pointer) == CURLE_OK, let pointer else { return nil }
            return String(cString: pointer.assumingMemoryBound(to: CChar.self))
        }
        return (info(CURLINFO_CAINFO), info(CURLINFO_CAPATH))
    }()
}
