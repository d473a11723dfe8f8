# numlink 面向个人的页面（简体中文）。此处每条消息都在 en/portal.ftl 中有对应（否则测试失败）。

site-name = numlink
site-tagline = 让二次放号更安全
lang-switch-label = 语言
skip-to-content = 跳到正文
footer-note = numlink 对每次查询和每个请求都留有防篡改记录。

verify-title = 核验号码持有证明
verify-intro = 号码持有证明说明谁自何时起持有某个手机号码。请将证明粘贴到下方，或打开其二维码中的链接。numlink 会用自己公布的密钥进行核验。
verify-label = 号码持有证明
verify-hint = 以“eyJ”开头的一长串字符。
verify-submit = 核验
verify-valid = 有效
verify-valid-detail = 此证明由 numlink 签发，且未被篡改。
verify-invalid = 无效
verify-claim-number = 手机号码
verify-claim-held-since = 最晚持有起始日
verify-claim-expires = 有效期至
verify-claim-issuer = 签发方
verify-next-valid = 在有效期内，您可以依据其所示号码和日期办理业务。
verify-next-invalid = 请勿依据此证明办理。请持有人在手机上打开 numlink，出示新的证明。
verify-why-malformed = 这不是号码持有证明：其中部分内容缺失或被改动。
verify-why-unknown-key = 它并非由 numlink 公布的密钥签发。
verify-why-bad-signature = 它的内容在 numlink 签发后被改动过。
verify-why-expired = 它已过期。证明的有效期为几天，持有人可以出示新的证明。
verify-why-wrong-issuer = 它由其他平台签发。

moment-utc = { $date } { $time }（UTC）
